"""A real instance's HTTP/2 port: h2c by prior knowledge, and h2 over TLS by ALPN, each request
of one connection answered with the instance's name."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends import control
from harness.balancers.tls import RunCertificates
from harness.load.grpc_client import GrpcConnection
from harness.runtimes.base import InstanceSpec, InstanceTls
from harness.runtimes.local import LocalProcessRuntime

pytestmark = pytest.mark.lb


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalProcessRuntime]:
    with LocalProcessRuntime(tmp_path / "instances") as started:
        yield started


def test_h2c_requests_of_one_connection_are_answered_and_counted(runtime: LocalProcessRuntime) -> None:
    (instance,) = runtime.start([InstanceSpec("h1", "api", "127.0.1.1", http2=True)])
    assert instance.http2_port > 0 and instance.http2_port != instance.port
    with GrpcConnection(f"http://{instance.host}:{instance.http2_port}") as connection:
        answers = [connection.get("/api/count") for _ in range(5)]
    assert [(a.http_status, a.instance) for a in answers] == [(200, "h1")] * 5, [a.describe() for a in answers]
    assert b'"http_version": "2"' in answers[0].messages[0], answers[0].messages
    state = control.state(instance)
    assert state["served"] == 5 and state["connections"] == 1, state


def test_h2_over_tls_is_chosen_by_alpn_and_the_mode_applies(runtime: LocalProcessRuntime, tmp_path: Path) -> None:
    authority = RunCertificates(tmp_path / "tls")
    chain, key = authority.issue(["api", "127.0.1.2"])
    tls = InstanceTls(str(chain), str(key), str(authority.ca_file))
    (instance,) = runtime.start([InstanceSpec("h2", "api", "127.0.1.2", tls=tls, http2=True)])
    control.set_mode(instance, fail_rate=1.0)
    with GrpcConnection(f"https://{instance.host}:{instance.http2_port}", ca_file=tls.ca_file) as connection:
        assert connection.sock.selected_alpn_protocol() == "h2"
        answer = connection.get("/api/count")
    assert (answer.http_status, answer.instance, answer.ok) == (503, "h2", False), answer.describe()
