"""HAProxy as a real balancer: order, its log, its stats socket, and active checks after a kill."""

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.balancers.haproxy.access_log import read_access_log
from harness.balancers.haproxy.balancer import HaproxyBalancer
from harness.balancers.haproxy.config import load_config
from harness.bench import BenchResult
from harness.errors import ConfigError
from harness.infra import shipped_dir
from harness.load.probes import sequential
from harness.processes import wait_gone
from harness.pytest_plugin import verdict_report
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance, InstanceSpec
from harness.runtimes.local import LocalProcessRuntime, instance_host

pytestmark = pytest.mark.lb


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalProcessRuntime]:
    with LocalProcessRuntime(tmp_path / "instances") as started:
        yield started


def three(runtime: LocalProcessRuntime) -> list[Instance]:
    return runtime.start([InstanceSpec(f"api-gateway-{i + 1}", "api-gateway", instance_host(i)) for i in range(3)])


def test_round_robin_rotates_and_every_request_is_logged(tmp_path: Path, runtime: LocalProcessRuntime) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-round-robin.cfg")
    with HaproxyBalancer(config, tmp_path) as haproxy:
        haproxy.start(three(runtime))
        order = [response.instance for response in sequential(haproxy.url, 9)]
    assert order == ["api-gateway-1", "api-gateway-2", "api-gateway-3"] * 3, order
    log = read_access_log(haproxy.access_log)
    assert len(log) == 9 and log["status"].eq(200).all()
    assert log["upstream_addr"].nunique() == 3 and log["attempts"].eq(1).all()


def test_active_checks_mark_a_killed_server_down_and_up_again(tmp_path: Path, runtime: LocalProcessRuntime) -> None:
    # inter 500ms fall 2 rise 2: DOWN within fall x inter + inter, UP within rise x inter + inter.
    config = load_config(shipped_dir() / "haproxy" / "haproxy-health-checks.cfg")
    with HaproxyBalancer(config, tmp_path) as haproxy:
        instances = three(runtime)
        haproxy.start(instances)
        WaitStrategy("every server UP").wait(lambda: True if set(haproxy.server_states().values()) == {"UP"} else None)
        victim = instances[1]
        killed = time.monotonic()
        runtime.signal(victim, signal.SIGKILL)
        wait_gone([victim.pid])
        WaitStrategy("api-gateway-2 DOWN", timeout=5).wait(
            lambda: True if haproxy.server_states()["api-gateway-2"] == "DOWN" else None
        )
        to_down = time.monotonic() - killed
        runtime.restart(victim)  # returns once the instance listens: its start-up is not HAProxy's
        restarted = time.monotonic()
        WaitStrategy("api-gateway-2 UP", timeout=5).wait(
            lambda: True if haproxy.server_states()["api-gateway-2"] == "UP" else None
        )
        to_up = time.monotonic() - restarted
    assert to_down <= 2 * 0.5 + 0.5 + 0.25, f"DOWN after {to_down:.2f} s (expected at most 1.5 s + 0.25 s slack)"
    assert to_up <= 2 * 0.5 + 0.5 + 0.25, f"UP after {to_up:.2f} s (expected at most 1.5 s + 0.25 s slack)"


def test_a_config_haproxy_rejects_stops_with_its_message(tmp_path: Path, runtime: LocalProcessRuntime) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text(
        "defaults\n    mode http\nbackend b\n    balance frobnicate\n    server api-gateway api-gateway:1\n"
    )
    with HaproxyBalancer(load_config(path), tmp_path) as haproxy, pytest.raises(ConfigError, match="haproxy rejected"):
        haproxy.start(three(runtime))


def test_a_reload_adds_a_server_without_losing_a_request(tmp_path: Path, runtime: LocalProcessRuntime) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-round-robin.cfg")
    with HaproxyBalancer(config, tmp_path) as haproxy:
        instances = three(runtime)
        haproxy.start(instances)
        fourth = runtime.start([InstanceSpec("api-gateway-4", "api-gateway", instance_host(3))])
        seconds = haproxy.reload(instances + fourth)
        served = {response.instance for response in sequential(haproxy.url, 8)}
    assert served == {f"api-gateway-{i}" for i in range(1, 5)}, served
    assert seconds < 5, f"reload took {seconds:.2f} s"


HEALTH = (shipped_dir() / "haproxy" / "haproxy-health-checks.cfg").read_text()
KILL = 'duration = 5\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'


def scenario_run(lb_bench: Callable[..., BenchResult], tmp_path: Path, config_text: str, scenario: str) -> BenchResult:
    config = tmp_path / "haproxy.cfg"
    config.write_text(config_text)
    path = tmp_path / "scenario.toml"
    path.write_text(scenario)
    return lb_bench("health_checks", balancer="haproxy", config=config, scenario=str(path))


def test_kill_with_redispatch_loses_nothing_and_checks_mark_it_down_and_up(
    lb_bench: Callable[..., BenchResult], tmp_path: Path
) -> None:
    result = scenario_run(lb_bench, tmp_path, HEALTH, KILL)
    assert result.passed, verdict_report(result)
    (row,) = result.results[0].failover
    assert row.time_to_eject_s is not None and row.time_to_eject_s <= 1.75, row
    assert row.client_errors == 0 and row.retried_elsewhere > 0, row


def test_kill_without_redispatch_keeps_requests_on_the_dead_server(
    lb_bench: Callable[..., BenchResult], tmp_path: Path
) -> None:
    # Without redispatch a request whose connection was refused is retried on the same
    # server after HAProxy's turn-around timer (min(timeout connect, 1 s)): it fails once the
    # retries are spent (503), or waits until the server is back. Either way the clients
    # caught by the kill see an error or a wait of a second or more, never a quick answer
    # from another server. (A p99 over the whole window can miss them: a handful of held
    # requests among a thousand.)
    result = scenario_run(lb_bench, tmp_path, HEALTH.replace("    option redispatch\n", ""), KILL)
    (row,) = result.results[0].failover
    assert row.retried_elsewhere == 0, row  # nothing was redispatched
    assert set(row.errors_by_status) <= {"502", "503"}, row
    requests = result.results[0].requests
    held = requests[
        (requests["status"] != 200) | ((requests["instance"] == "api-gateway-2") & (requests["latency_ms"] >= 900))
    ]
    assert len(held) > 0, f"no request failed or waited 900 ms or more on api-gateway-2 (expected some); {row}"


def test_active_checks_see_a_failing_health_endpoint(lb_bench: Callable[..., BenchResult], tmp_path: Path) -> None:
    unhealthy = 'duration = 4\nwarmup = 1\n[[faults]]\nat = 1\nkind = "unhealthy"\ninstance = 1\nrollback_after = 2\n'
    result = scenario_run(lb_bench, tmp_path, HEALTH, unhealthy)
    assert result.passed, verdict_report(result)
    (down,) = [v for v in result.results[0].verdicts if "mark it DOWN" in v.check]
    assert down.observed["requests_while_down"] == 0, down.summary


def test_servers_without_check_fail_the_marked_down_check(lb_bench: Callable[..., BenchResult], tmp_path: Path) -> None:
    mutated = HEALTH.replace("server api-gateway api-gateway:3000 check", "server api-gateway api-gateway:3000")
    assert mutated != HEALTH
    result = scenario_run(lb_bench, tmp_path, mutated, KILL)
    (down,) = [v for v in result.results[0].verdicts if "mark it DOWN" in v.check]
    assert down.passed is False and "no `check`" in down.summary, down.summary
