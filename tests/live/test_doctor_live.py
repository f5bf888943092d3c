"""The real ``harness doctor`` on this machine, which `make setup` has given nginx."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.balancers.nginx.balancer import nginx_binary, nginx_version

pytestmark = pytest.mark.lb
# The installed command itself, next to the interpreter running the tests (.venv/bin/harness).
HARNESS = Path(sys.executable).with_name("harness")


def test_doctor_finds_nginx_with_its_version_and_exits_0() -> None:
    done = subprocess.run([str(HARNESS), "doctor"], capture_output=True, text=True, timeout=120, check=False)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, f"exit code {done.returncode}, expected 0: nginx is installed"
    row = re.search(r"^nginx\s+found\s+(\d+(?:\.\d+)+)\s+(\S+)", done.stdout, re.MULTILINE)
    assert row is not None, "expected a row: nginx  found  <version>  <path>"
    version, path = row.groups()
    # The doctor must report the nginx a run would use, and the version that binary prints.
    print(f"observed {version} at {path}; expected {nginx_version()!r} at {nginx_binary()}")
    assert path == nginx_binary()
    assert version in nginx_version()
    created = re.search(r"network namespaces: created and deleted (lbh-[0-9a-f]+)", done.stdout)
    if created is not None:  # as root: the throwaway namespace must be gone
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        print(f"namespaces now: {left!r}; expected no {created.group(1)}")
        assert created.group(1) not in left
    elif os.geteuid() == 0:
        pytest.fail("as root the doctor should have created and deleted a namespace")
