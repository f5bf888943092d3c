"""HAProxy as a real balancer: order, its log, its stats socket, and active checks after a kill."""

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.algorithms import infra_dir
from harness.balancers.haproxy.access_log import read_access_log
from harness.balancers.haproxy.balancer import HaproxyBalancer
from harness.balancers.haproxy.config import load_config
from harness.errors import ConfigError
from harness.load.probes import sequential
from harness.processes import wait_gone
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
    config = load_config(infra_dir() / "haproxy" / "haproxy-round-robin.cfg")
    with HaproxyBalancer(config, tmp_path) as haproxy:
        haproxy.start(three(runtime))
        order = [response.instance for response in sequential(haproxy.url, 9)]
    assert order == ["api-gateway-1", "api-gateway-2", "api-gateway-3"] * 3, order
    log = read_access_log(haproxy.access_log)
    assert len(log) == 9 and log["status"].eq(200).all()
    assert log["upstream_addr"].nunique() == 3 and log["attempts"].eq(1).all()


def test_active_checks_mark_a_killed_server_down_and_up_again(tmp_path: Path, runtime: LocalProcessRuntime) -> None:
    # inter 500ms fall 2 rise 2: DOWN within fall x inter + inter, UP within rise x inter + inter.
    config = load_config(infra_dir() / "haproxy" / "haproxy-health-checks.cfg")
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
        restarted = time.monotonic()
        runtime.restart(victim)
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
    config = load_config(infra_dir() / "haproxy" / "haproxy-round-robin.cfg")
    with HaproxyBalancer(config, tmp_path) as haproxy:
        instances = three(runtime)
        haproxy.start(instances)
        fourth = runtime.start([InstanceSpec("api-gateway-4", "api-gateway", instance_host(3))])
        seconds = haproxy.reload(instances + fourth)
        served = {response.instance for response in sequential(haproxy.url, 8)}
    assert served == {f"api-gateway-{i}" for i in range(1, 5)}, served
    assert seconds < 5, f"reload took {seconds:.2f} s"
