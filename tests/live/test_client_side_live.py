"""Client-side balancing on real instances: clients pick, drop a killed instance by the
nginx rule their config states, and take it back after fail_timeout."""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.client.balancer import ClientSideBalancer
from harness.balancers.client.config import load_config
from harness.balancers.nginx.access_log import attempts, read_access_log
from harness.bench import BenchResult
from harness.checks.fault_rows import LOG_TIME_TOLERANCE_S
from harness.load.probes import sequential
from harness.pytest_plugin import verdict_report
from harness.runtimes.base import InstanceSpec
from harness.runtimes.local import LocalProcessRuntime, instance_host

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]
HEALTH_CHECKS = shipped_config(ALGORITHMS["health_checks"], "client").read_text()
KILL = 'duration = 6\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'


def run_kill(lb_bench: Bench, tmp_path: Path, max_fails: int) -> BenchResult:
    text = HEALTH_CHECKS.replace('fail_timeout = "30s"', 'fail_timeout = "2s"')
    config = tmp_path / "client.toml"
    config.write_text(text.replace("max_fails = 3", f"max_fails = {max_fails}"))
    scenario = tmp_path / "kill.toml"
    scenario.write_text(KILL)
    return lb_bench("health_checks", balancer="client", config=config, scenario=str(scenario))


def test_clients_drop_a_killed_instance_after_max_fails_and_take_it_back_after_fail_timeout(
    lb_bench: Bench, tmp_path: Path
) -> None:
    result = run_kill(lb_bench, tmp_path, max_fails=3)
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    assert row.client_errors == 0 and row.retried_elsewhere > 0, row
    assert row.failures_before_eject >= 3 and row.attempts_while_out == 0, row
    assert (
        row.recovery_after_last_failure_s is not None
        and 2.0 - LOG_TIME_TOLERANCE_S <= row.recovery_after_last_failure_s <= 3.25
    ), row


def test_max_fails_zero_fails_the_ejection_check(lb_bench: Bench, tmp_path: Path) -> None:
    result = run_kill(lb_bench, tmp_path, max_fails=0)
    (ejected,) = [v for v in result.results[0].verdicts if "taken out after max_fails" in v.check]
    assert ejected.passed is False and "max_fails=0" in ejected.summary, ejected.summary


def test_every_request_leaves_one_line_with_each_attempt_in_nginx_format(tmp_path: Path) -> None:
    config = load_config(shipped_config(ALGORITHMS["round_robin"], "client"))
    specs = [InstanceSpec(f"api-gateway-{i + 1}", "api-gateway", instance_host(i)) for i in range(3)]
    with LocalProcessRuntime(tmp_path / "instances") as runtime:
        instances = runtime.start(specs)
        balancer = ClientSideBalancer(config, tmp_path)
        balancer.start(instances)
        order = [response.instance for response in sequential(balancer.route, 6)]
        runtime.stop(instances[0])
        after_stop = [response.instance for response in sequential(balancer.route, 4)]
        balancer.stop()
    assert order == ["api-gateway-1", "api-gateway-2", "api-gateway-3"] * 2, order
    assert "api-gateway-1" not in after_stop and len(after_stop) == 4, after_stop
    log = attempts(read_access_log(tmp_path / "access.log"))
    refused = log[log["failed"]]
    # The first request after the stop was refused by api-gateway-1 and answered by the next instance.
    assert list(refused["address"]) == [instances[0].address], log
    assert refused["tries"].iloc[0] == 2 and len(read_access_log(tmp_path / "access.log")) == 10
