"""The Docker runtime on a real engine: the same verdicts as local processes, nothing left behind.

Runs when an engine answers (``make test`` starts the harness's own with
``dockerd --bridge=none --iptables=false``); skipped with the reason otherwise.
"""

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bench import BenchResult
from harness.errors import ToolMissingError
from harness.pytest_plugin import verdict_report
from harness.runtimes.containers import RUN_LABEL, run_label
from harness.runtimes.docker_engine import LABEL, engine, ensure_runtime_image
from tests.live.fixtures import kill_scenario, short_fail_timeout_nginx

pytestmark = pytest.mark.lb

try:
    CLIENT = engine()
except ToolMissingError as missing:
    pytest.skip(f"no Docker engine: {missing}", allow_module_level=True)

Bench = Callable[..., BenchResult]


def containers_of(run_dir: Path, *labels: str) -> list[str]:
    """Names of the run's containers, in one call to the engine: the SDK's ``containers.list``
    inspects each listed container afterwards and fails on one the reaper removed meanwhile."""
    filters = {"label": [f"{RUN_LABEL}={run_label(run_dir)}", *labels]}
    return [entry["Names"][0].lstrip("/") for entry in CLIENT.api.containers(all=True, filters=filters)]


def test_the_runtime_image_is_built_once() -> None:
    first = ensure_runtime_image(CLIENT)
    started = time.monotonic()
    again = ensure_runtime_image(CLIENT)
    assert again == first and time.monotonic() - started < 5, "the second call rebuilt the image"
    assert CLIENT.images.get(first).labels.get(LABEL) == "runtime"


def test_round_robin_on_containers_passes_and_leaves_no_container(lb_bench: Bench) -> None:
    result = lb_bench("round_robin", runtime="docker", duration=2)
    run = result.results[0]
    assert result.passed, verdict_report(result)
    assert {v.check for v in run.verdicts if v.passed} >= {"sequential requests follow the exact order"}
    assert containers_of(run.run_dir) == []


def test_failover_on_containers_matches_the_local_runtime(lb_bench: Bench, tmp_path: Path) -> None:
    config, scenario = short_fail_timeout_nginx(tmp_path), kill_scenario(tmp_path, duration=9)
    # A container takes about a second to start again, and nginx's probe after fail_timeout may
    # meet it still starting: 9 s leave room for one more fail_timeout before the load ends.
    result = lb_bench("health_checks", config=config, scenario=str(scenario), runtime="docker")
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    assert row.client_errors == 0 and row.failures_before_eject >= 3 and row.attempts_while_out == 0, row
    assert containers_of(result.results[0].run_dir) == []


def test_a_killed_harness_leaves_no_container(tmp_path: Path) -> None:
    results = tmp_path / "results"
    log = tmp_path / "harness.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.cli.main", "bench", "--algo", "round_robin", "--runtime", "docker",
             "--duration", "20", "--results-dir", str(results)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60

    def journal() -> str:
        return "".join(j.read_text() for j in results.glob("*/round_robin/journal.jsonl"))

    while '"balancer"' not in journal():
        assert time.monotonic() < deadline and process.poll() is None, (
            f"the run never reached its load: {log.read_text()}"
        )
        time.sleep(0.1)
    (run_dir,) = results.glob("*/round_robin")
    balancer = containers_of(run_dir, f"{LABEL}=balancer")
    assert len(containers_of(run_dir)) == 4 and len(balancer) == 1, containers_of(run_dir)  # 3 instances and nginx
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # The reaper removes them with the docker CLI; on a loaded machine that can take a while.
    deadline = time.monotonic() + 60
    while containers_of(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert containers_of(run_dir) == [], f"the reaper did not remove the run's containers: {containers_of(run_dir)}"


def test_up_on_containers_keeps_them_until_ctrl_c(tmp_path: Path) -> None:
    results = tmp_path / "results"
    log = tmp_path / "up.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.cli.main", "up", "--runtime", "docker", "--results-dir", str(results)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in log.read_text():
            assert time.monotonic() < deadline and process.poll() is None, (
                f"harness up never came up: {log.read_text()}"
            )
            time.sleep(0.1)
        (run_dir,) = results.glob("*-up-round_robin-*")
        assert len(containers_of(run_dir)) == 4, containers_of(run_dir)  # 3 instances and nginx
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0 and "stopped nginx and every instance" in log.read_text(), log.read_text()
    assert containers_of(run_dir) == []
