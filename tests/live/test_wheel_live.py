"""The package as a user installs it: a wheel in a new venv, used from an empty directory outside the checkout.

One venv for the module. It sees the dependencies of the checkout's venv (a ``.pth`` file
names its site-packages; ``make setup`` installed them from the same pyproject.toml) instead
of installing its own 200 MB of them: the wheel goes in without them, and ``pip check`` then
holds every requirement the wheel declares to what the venv imports.

The installed package runs as on a user's machine, where Python writes each module's
bytecode on its first import: pip installs with --no-compile (compiling every module of
every dependency takes about a minute), and PYTHONDONTWRITEBYTECODE, which a CI machine may
set, is dropped so the commands do not compile the modules they import again each time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.infra import shipped_dir

pytestmark = pytest.mark.lb
CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    workdir: Path  # empty at the start, outside the checkout

    def run(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        # Nothing of the checkout's environment may leak in: not its venv, not its infra folder.
        environment = {
            key: value
            for key, value in user_environment().items()
            if key not in {"VIRTUAL_ENV", "PYTHONPATH", "HARNESS_INFRA_DIR"} and not key.startswith("PYTEST_")
        }
        environment["PATH"] = f"{self.bin}:{environment.get('PATH', '')}"
        return subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=environment,
        )


def user_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    # The build backend pyproject.toml names (setuptools) is in the checkout's venv already.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist"), str(CHECKOUT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (root / "dist").glob("lb_harness-*.whl")
    environment = root / "venv"
    venv.create(environment, with_pip=False)
    python = str(environment / "bin" / "python")
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # After the venv's own site-packages on sys.path: the wheel's harness comes first. The
    # checkout's own (an editable install) is not importable from there: its finder is a
    # .pth file of that folder, and .pth files are read only in the venv's own.
    Path(site_packages, "checkout-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The pip of `make setup`, installing into the new venv (which has no pip of its own).
    pip = [sys.executable, "-m", "pip", "--python", python]
    installed = subprocess.run(
        [*pip, "install", "--quiet", "--no-compile", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=300, check=False)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    # From outside the checkout, as the commands run: the checkout's folder holds a harness too.
    where = subprocess.run(
        [python, "-c", "import harness; print(harness.__file__)"], cwd=root, capture_output=True, text=True
    )
    assert where.stdout.startswith(site_packages), f"harness imported from {where.stdout or where.stderr}"
    workdir = root / "empty"
    workdir.mkdir()
    yield Installed(wheel=wheel, bin=environment / "bin", workdir=workdir)


def test_the_wheel_carries_every_shipped_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    shipped = {
        f"harness/shipped/{path.relative_to(shipped_dir().parent)}"
        for path in shipped_dir().parent.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = sorted(shipped - names)
    assert not missing, f"{len(missing)} of {len(shipped)} shipped files are not in the wheel: {missing[:10]}"
    for needed in ("harness/console/static/backends.html", "harness/load/wrk_counts.lua", "harness/py.typed"):
        assert needed in names, needed


def test_doctor_finds_nginx_from_the_installed_package(installed: Installed) -> None:
    done = installed.run("harness", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^nginx\s+found\s+1\.\d+\.\d+\s+/", done.stdout, re.MULTILINE), done.stdout


def test_bench_all_runs_the_shipped_configs_from_an_empty_directory(installed: Installed) -> None:
    done = installed.run("harness", "bench", "--algo", "all", "--duration", "2", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("infra: shipped configs (") and "site-packages" in first_line, first_line
    for algorithm in ("round_robin", "least_conn", "ip_hash", "weighted", "health_checks", "random"):
        assert f"\n{algorithm}  (" in done.stdout, f"{algorithm} missing from:\n{done.stdout[-3000:]}"
    assert "all checks passed" in done.stdout, done.stdout[-2000:]
    assert (installed.workdir / "results").is_dir(), sorted(installed.workdir.iterdir())


def test_k8s_lint_lints_the_shipped_manifests_and_then_the_users_own(installed: Installed) -> None:
    shipped = installed.run("harness", "k8s", "lint")
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "site-packages" in shipped.stdout, shipped.stdout
    own = installed.workdir / "infra" / "k8s"
    own.mkdir(parents=True)
    (own / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: nothing-has-this\n"
        "  ports:\n    - port: 80\n      targetPort: 3000\n"
    )
    try:
        theirs = installed.run("harness", "k8s", "lint")
    finally:
        (own / "service.yaml").unlink()
        own.rmdir()
        own.parent.rmdir()
    assert "infra: ./infra (your own), shipped configs for the rest" in theirs.stdout, theirs.stdout
    assert "service.yaml" in theirs.stdout and "site-packages" not in theirs.stdout.split("\n", 1)[1], theirs.stdout
    assert theirs.returncode == 1, (theirs.returncode, theirs.stdout)


def test_a_users_own_pytest_project_runs_the_marker_without_a_conftest(installed: Installed) -> None:
    project = installed.workdir / "project"
    project.mkdir()
    (project / "test_balancer.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.lb(algo='round_robin', duration=2)\n"
        "def test_round_robin(lb_result):\n"
        "    assert set(lb_result.verdicts) == {'round_robin'}\n\n"
        "@pytest.mark.lb(algo='ip_hash', config='nginx-round-robin.conf', duration=2)\n"
        "def test_round_robin_is_not_ip_hash():\n"
        "    pass\n"
    )
    (project / "nginx-round-robin.conf").write_text((shipped_dir() / "nginx" / "nginx-round-robin.conf").read_text())
    done = subprocess.run(
        # pytest is the checkout's (the venv sees its dependencies); the plugin is the wheel's.
        [str(installed.bin / "python"), "-m", "pytest", "-m", "lb", "-p", "no:cacheprovider",
         "--junitxml", "junit.xml"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={key: value for key, value in user_environment().items() if not key.startswith(("PYTEST_", "HARNESS_"))},
    )  # fmt: skip
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:]
    assert "FAIL each client sticks to one instance" in done.stdout, done.stdout[-3000:]
    junit = (project / "junit.xml").read_text()
    assert 'name="lb.round_robin.spread_under_load_matches_even_shares" value="PASS' in junit, junit[:3000]
    assert 'name="lb.ip_hash.each_client_sticks_to_one_instance" value="FAIL' in junit, junit[:3000]
