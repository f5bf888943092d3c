"""The reaper stops what a SIGKILLed harness's children forked, however early the harness dies."""

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from harness import reaper
from harness.processes import alive, wait_gone

# A harness that spawns a child which forks at once (as nginx forks its workers) and is
# SIGKILLed the moment Popen returns, before any line of its own after the fork could run.
DIES_RIGHT_AFTER_SPAWN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path
    from harness import processes

    pid_file = Path(sys.argv[1])

    class DiesAfterSpawn(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kwargs.get("preexec_fn") is None:  # the reaper itself
                return
            deadline = time.monotonic() + 10
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    subprocess.Popen = DiesAfterSpawn
    processes.spawn(["sh", "-c", f"sleep 60 & echo $! > {pid_file}.part && mv {pid_file}.part {pid_file}; wait"],
                    pid_file.with_suffix(".log"))
    """
)


def test_a_grandchild_forked_before_spawn_returns_is_reaped(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    harness = subprocess.run(
        [sys.executable, "-c", DIES_RIGHT_AFTER_SPAWN, str(pid_file)], capture_output=True, timeout=30, check=False
    )
    assert harness.returncode == -signal.SIGKILL, harness.stderr.decode()
    grandchild = int(pid_file.read_text())
    try:
        left = wait_gone([grandchild], timeout=10)
        assert not left, f"the child's own fork (pid {grandchild}) outlived the harness; expected it reaped"
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_a_group_the_harness_stopped_is_forgotten(tmp_path: Path) -> None:
    """``forget`` takes a group off the list: a later pgid reuse must not be killed."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        started = reaper.start_time(sleeper.pid)
        commands = f"watch {sleeper.pid} {started}\nforget {sleeper.pid}\n"
        assert reaper.main(io.StringIO(commands)) == 0  # its kills, if any, are sent before it returns
        assert sleeper.poll() is None, "a forgotten group was killed; expected it left alone"
    finally:
        sleeper.kill()
        sleeper.wait()
