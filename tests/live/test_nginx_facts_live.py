"""Facts the checks rely on (shared NGINX-FACTS), re-measured on this machine's nginx."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.balancer import NginxBalancer
from harness.balancers.nginx.config import load_config
from harness.load.probes import SERVE_THROUGH_CONCURRENCY, get, serve_through
from harness.runtimes.local import LocalProcessRuntime
from harness.topology import plan_instances

pytestmark = pytest.mark.lb


@pytest.fixture
def ip_hash_url(tmp_path: Path) -> Iterator[str]:
    config = load_config(shipped_config(ALGORITHMS["ip_hash"]))
    with LocalProcessRuntime(tmp_path / "instances") as runtime, NginxBalancer(config, tmp_path) as nginx:
        nginx.start(runtime.start(plan_instances(config.services, 3)))
        yield nginx.url


def test_ip_hash_uses_only_the_first_three_octets(ip_hash_url: str) -> None:
    served = {get(ip_hash_url, "/api/count", source=f"127.20.5.{last}").instance for last in (1, 2, 77, 254)}
    assert len(served) == 1, f"127.20.5.1/.2/.77/.254 reached {sorted(served)}; expected one instance"


def test_ip_hash_spreads_over_the_third_octet(ip_hash_url: str) -> None:
    served = {get(ip_hash_url, "/api/count", source=f"127.20.{third}.1").instance for third in range(30)}
    assert len(served) == 3, f"30 addresses differing in the third octet reached only {sorted(served)}"


def test_serve_through_sees_every_instance_answer_through_ip_hash(tmp_path: Path) -> None:
    """Its requests come from changing /24s a batch at a time: ip_hash spreads them over all three."""
    config = load_config(shipped_config(ALGORITHMS["ip_hash"]))
    with LocalProcessRuntime(tmp_path / "instances") as runtime, NginxBalancer(config, tmp_path) as nginx:
        instances = runtime.start(plan_instances(config.services, 3))
        nginx.start(instances)
        sent = serve_through(nginx.url, instances, max_requests=100)
    # One batch of 4 x the requests in flight is enough for three instances.
    assert sent == 4 * SERVE_THROUGH_CONCURRENCY, sent
