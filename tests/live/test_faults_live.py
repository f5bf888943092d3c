"""Faults on a timeline against real nginx: what clients and nginx saw, checked against the config.

The configs are the shipped health-checks config with a shorter fail_timeout (and other
settings where a test says so), so that recovery fits in a few seconds; every
expectation is derived from the config under test.
"""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.bench import BenchResult
from harness.checks.fault_rows import LOG_TIME_TOLERANCE_S
from harness.checks.verdict import Verdict
from harness.pytest_plugin import verdict_report

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]
HEALTH_CHECKS = shipped_config(ALGORITHMS["health_checks"]).read_text()


def config(tmp_path: Path, replace: dict[str, str] | None = None) -> Path:
    """The health-checks config with fail_timeout=2s and the given text replacements."""
    text = HEALTH_CHECKS.replace("fail_timeout=30s", "fail_timeout=2s")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def scenario(tmp_path: Path, duration: float, *faults: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(f"duration = {duration}\nwarmup = 1\n" + "".join(f"[[faults]]\n{fault}\n" for fault in faults))
    return path


def verdicts(result: BenchResult, containing: str) -> list[Verdict]:
    return [v for v in result.results[0].verdicts if containing in v.check]


KILL = 'at = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5'


def test_kill_loses_no_get_ejects_after_max_fails_and_recovers_after_fail_timeout(
    lb_bench: Bench, tmp_path: Path
) -> None:
    result = lb_bench("health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 6, KILL)))
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    assert row.client_errors == 0 and row.failures_before_eject >= 3 and row.attempts_while_out == 0, row
    assert (
        row.recovery_after_last_failure_s is not None
        and 2.0 - LOG_TIME_TOLERANCE_S <= row.recovery_after_last_failure_s <= 3.25
    ), row
    assert (result.run_dir / "health_checks" / "failover.csv").is_file()


def test_max_fails_zero_fails_the_ejection_check(lb_bench: Bench, tmp_path: Path) -> None:
    mutated = config(tmp_path, {"max_fails=3": "max_fails=0"})
    result = lb_bench("health_checks", config=mutated, scenario=str(scenario(tmp_path, 6, KILL)))
    (ejected,) = verdicts(result, "taken out after max_fails")
    assert ejected.passed is False and "max_fails=0" in ejected.summary, verdict_report(result)
    assert ejected.observed["failed_attempts"] > 10, ejected.summary


def test_proxy_next_upstream_off_loses_get_requests(lb_bench: Bench, tmp_path: Path) -> None:
    mutated = config(
        tmp_path, {"proxy_pass http://api_gateway;": "proxy_pass http://api_gateway; proxy_next_upstream off;"}
    )
    result = lb_bench("health_checks", config=mutated, scenario=str(scenario(tmp_path, 6, KILL)))
    (lossless,) = verdicts(result, "GET requests lose nothing")
    assert lossless.passed is False and lossless.observed["client_errors"] > 0, verdict_report(result)
    assert "proxy_next_upstream off" in lossless.summary


def test_hang_costs_proxy_read_timeout_per_affected_request(lb_bench: Bench, tmp_path: Path) -> None:
    fast = config(tmp_path, {"proxy_read_timeout 5s;": "proxy_read_timeout 1s;"})
    hang = 'at = 1\nkind = "hang"\ninstance = 1\nrollback_after = 2.5'
    result = lb_bench("health_checks", config=fast, scenario=str(scenario(tmp_path, 5, hang)))
    assert result.passed, verdict_report(result)
    (cost,) = verdicts(result, "waits proxy_read_timeout")
    assert 1.0 <= cost.observed["median_wait_s"] <= 2.0, cost.summary


def test_least_conn_sends_less_to_a_slow_instance(lb_bench: Bench, tmp_path: Path) -> None:
    slow = 'at = 1\nkind = "slow"\ninstance = 1\ndelay_ms = 200\nrollback_after = 3'
    result = lb_bench("least_conn", scenario=str(scenario(tmp_path, 5, slow)))
    assert result.passed, verdict_report(result)
    (avoids,) = verdicts(result, "sends less to the slow instance")
    assert avoids.observed["share"] < 1 / 6, avoids.summary


def test_round_robin_does_not_avoid_a_slow_instance(lb_bench: Bench, tmp_path: Path) -> None:
    slow = 'at = 1\nkind = "slow"\ninstance = 1\ndelay_ms = 200\nrollback_after = 3'
    result = lb_bench("least_conn", config=config(tmp_path), scenario=str(scenario(tmp_path, 5, slow)))
    (avoids,) = verdicts(result, "sends less to the slow instance")
    assert avoids.passed is False and avoids.observed["share"] > 0.3, avoids.summary


@pytest.mark.parametrize(("retry_503", "errors_expected"), [(False, True), (True, False)])
def test_failing_answers_reach_clients_unless_retried(
    lb_bench: Bench, tmp_path: Path, retry_503: bool, errors_expected: bool
) -> None:
    replace = {
        "proxy_pass http://api_gateway;": "proxy_pass http://api_gateway; proxy_next_upstream error timeout http_503;"
    }
    cfg = config(tmp_path, replace if retry_503 else None)
    fail = 'at = 1\nkind = "fail"\ninstance = 3\nfail_rate = 0.5\nrollback_after = 2'
    result = lb_bench("health_checks", config=cfg, scenario=str(scenario(tmp_path, 4, fail)))
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    assert (row.client_errors > 0) is errors_expected, row


def test_unhealthy_health_endpoint_is_invisible_to_passive_checks(lb_bench: Bench, tmp_path: Path) -> None:
    unhealthy = 'at = 1\nkind = "unhealthy"\ninstance = 1\nrollback_after = 2'
    result = lb_bench("health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 4, unhealthy)))
    assert result.passed, verdict_report(result)


def test_rolling_restart_loses_no_request(lb_bench: Bench, tmp_path: Path) -> None:
    # Spaced by more than fail_timeout (2 s) + 1 s: each instance is back in rotation
    # before the next one restarts.
    steps = [f'at = {at}\nkind = "restart"\ninstance = {i}' for i, at in ((1, 1), (2, 4.5), (3, 8))]
    result = lb_bench("health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 11, *steps)))
    assert result.passed, verdict_report(result)
    assert len(result.results[0].failover) == 3
    assert result.results[0].requests["status"].eq(200).all()


def test_a_rolling_restart_faster_than_fail_timeout_takes_every_instance_out(lb_bench: Bench, tmp_path: Path) -> None:
    # Each restart refuses connections for a moment, enough for max_fails failures; nginx
    # then keeps that instance out for fail_timeout, so restarting the next one within it
    # leaves no live upstream: clients get 502 although every process is running.
    # The load runs long enough for every restart to happen even when one is slow.
    steps = [f'at = {at}\nkind = "restart"\ninstance = {i}' for i, at in ((1, 1), (2, 1.5), (3, 2))]
    result = lb_bench("health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 7, *steps)))
    assert all(row.skipped is None for row in result.results[0].failover), result.results[0].failover
    failed = [v for v in result.results[0].verdicts if v.passed is False]
    assert failed and all("GET requests lose nothing" in v.check for v in failed), verdict_report(result)
    assert result.results[0].requests["status"].eq(502).any()


@pytest.mark.parametrize(("workers", "zone"), [(2, False), (2, True)])
def test_kill_with_two_workers_with_and_without_a_zone(
    lb_bench: Bench, tmp_path: Path, workers: int, zone: bool
) -> None:
    result = lb_bench(
        "health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 6, KILL)), workers=workers, zone=zone
    )
    (ejected,) = verdicts(result, "taken out after max_fails")
    scope = "one shared count" if zone else "2 workers counting separately"
    assert ejected.passed and scope in ejected.summary, verdict_report(result)


def test_blackhole_costs_proxy_connect_timeout_and_loses_no_get(lb_bench: Bench, tmp_path: Path) -> None:
    blackhole = 'at = 1\nkind = "blackhole"\ninstance = 1\nrollback_after = 3'
    result = lb_bench("health_checks", config=config(tmp_path), scenario=str(scenario(tmp_path, 5, blackhole)))
    assert result.passed, verdict_report(result)
    (cost,) = verdicts(result, "waits proxy_connect_timeout")
    assert 1.0 <= cost.observed["median_wait_s"] <= 2.0, cost.summary  # proxy_connect_timeout 1s
    log = (result.run_dir / "health_checks" / "error.log").read_text()
    assert "Connection timed out" in log or "timed out" in log


def test_scale_up_and_down_and_reload_lose_no_request(lb_bench: Bench, tmp_path: Path) -> None:
    steps = ['at = 1\nkind = "scale"\nto = 5', 'at = 2.5\nkind = "reload"', 'at = 4\nkind = "scale"\nto = 2']
    result = lb_bench("round_robin", scenario=str(scenario(tmp_path, 6, *steps)))
    assert result.passed, verdict_report(result)
    run = result.results[0]
    assert run.requests["status"].eq(200).all()
    served = {row.instance for row in run.rows if row.requests > 0}
    assert served == {f"api-gateway-{i}" for i in range(1, 6)}, run.rows
    journal = (result.run_dir / "round_robin" / "journal.jsonl").read_text()
    assert '"removed": ["api-gateway-3", "api-gateway-4", "api-gateway-5"]' in journal


def test_ip_hash_moves_only_the_dead_instances_clients_and_brings_them_back(lb_bench: Bench, tmp_path: Path) -> None:
    ip_hash = config(tmp_path, {"upstream api_gateway {": "upstream api_gateway {\n        ip_hash;"})
    result = lb_bench("ip_hash", config=ip_hash, users=12, scenario=str(scenario(tmp_path, 7, KILL)))
    (remap,) = verdicts(result, "ip_hash moves only")
    assert remap.passed, verdict_report(result)
    assert 0 < remap.observed["clients_of_dead_instance"] == remap.observed["came_back"], remap.summary


def test_posts_in_flight_at_a_kill_fail_and_no_other_post_does(lb_bench: Bench, tmp_path: Path) -> None:
    path = scenario(tmp_path, 6, KILL)
    path.write_text('method = "POST"\nrequest_path = "/api/slow?ms=100"\n' + path.read_text())
    result = lb_bench("health_checks", config=config(tmp_path), users=20, scenario=str(path))
    (posts,) = verdicts(result, "only POSTs in flight at the fault fail")
    assert posts.passed, verdict_report(result)
    assert posts.observed["client_errors"] >= 1 and set(posts.observed["by_status"]) == {"502"}, posts.summary
