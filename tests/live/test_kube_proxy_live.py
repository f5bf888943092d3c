"""kube-proxy's nftables balancing, for real, inside a network namespace of the run's own."""

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bench import BenchResult
from harness.infra import shipped_dir
from harness.pytest_plugin import verdict_report

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.startswith("lbh-")}


def _can_make_namespaces() -> str | None:
    if shutil.which("nft") is None or shutil.which("ip") is None:
        return "nft or ip is not installed (make setup installs nftables and iproute2)"
    made = subprocess.run(["ip", "netns", "add", "lbh-can-i"], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"this machine lets the harness make no network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", "lbh-can-i"], capture_output=True, check=False)
    return None


if (why := _can_make_namespaces()) is not None:
    pytest.skip(why, allow_module_level=True)


def fast_probes(tmp_path: Path) -> Path:
    """The seed's Service, next to its Deployment with readiness probes every second, two failures."""
    k8s = shipped_dir() / "k8s"
    shutil.copy(k8s / "01-service-clusterip.yaml", tmp_path / "service.yaml")
    deployment = (k8s / "05-deployment-with-probes.yaml").read_text()
    fast = deployment.replace(
        "periodSeconds: 5\n            timeoutSeconds: 1\n            failureThreshold: 3",
        "periodSeconds: 1\n            timeoutSeconds: 1\n            failureThreshold: 2",
    )
    assert fast != deployment
    (tmp_path / "deployment.yaml").write_text(fast)
    return tmp_path / "service.yaml"


def test_the_host_keeps_no_rule_and_no_namespace(lb_bench: Bench) -> None:
    before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False).stdout
    result = lb_bench("random", balancer="kube-proxy", duration=2)
    assert result.passed, verdict_report(result)
    after = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False).stdout
    assert after == before and "lb_harness" not in after
    assert _namespaces() == set()
    rules = (result.run_dir / "random" / "kube-proxy.nft").read_text()
    assert "numgen random mod 3" in rules and "10.96.0.10" in rules


def test_a_killed_pod_leaves_the_endpoints_within_the_probe_budget(lb_bench: Bench, tmp_path: Path) -> None:
    scenario = tmp_path / "kill.toml"
    scenario.write_text(
        'duration = 9\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 4\n'
    )
    result = lb_bench("health_checks", balancer="kube-proxy", config=fast_probes(tmp_path), scenario=str(scenario))
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    # periodSeconds=1 x failureThreshold=2 + timeoutSeconds=1: out within 3 s (+0.5 s slack); kube-proxy
    # does not retry, so connections to the dead pod fail until then.
    assert row.time_to_eject_s is not None and row.time_to_eject_s <= 3.5, row
    assert row.client_errors > 0 and row.retried_elsewhere == 0, row


def test_a_killed_harness_leaves_no_namespace(tmp_path: Path) -> None:
    results = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "bench", "--balancer", "kube-proxy", "--algo", "random",
         "--duration", "20", "--results-dir", str(results)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any('"balancer"' in j.read_text() for j in results.glob("*/*/journal.jsonl")):
        assert time.monotonic() < deadline and process.poll() is None, "the run never started its load"
        time.sleep(0.1)
    assert len(_namespaces()) == 1
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _namespaces() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _namespaces() == set(), "the reaper did not delete the run's namespace"
    assert [json.loads(line)["event"] for line in next(results.glob("*/*/journal.jsonl")).read_text().splitlines()]


def test_ip_hash_claims_fail_on_a_service_without_session_affinity(lb_bench: Bench) -> None:
    result = lb_bench(
        "ip_hash", balancer="kube-proxy", config=shipped_dir() / "k8s" / "01-service-clusterip.yaml", duration=2
    )
    sticky = next(v for v in result.results[0].verdicts if v.check == "each client sticks to one instance")
    assert sticky.passed is False, verdict_report(result)


def test_without_affinity_no_client_is_pinned(lb_bench: Bench) -> None:
    result = lb_bench("round_robin", balancer="kube-proxy", duration=2)
    moved = next(v for v in result.results[0].verdicts if v.check.startswith("no client is pinned"))
    assert moved.passed is True and moved.observed["clients_judged"] == 10, moved.summary
