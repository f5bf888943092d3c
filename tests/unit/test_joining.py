"""Workers that join a run from other machines: the options that ask for them, the names and the
target the master gives them, the address a worker sends from. The join itself runs live
(tests/live/test_joined_workers_live.py)."""

import dataclasses
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from harness.cli.parser import build_parser, spec_from_args
from harness.errors import AddressInUseError, SpecError
from harness.load.joined_workers import JoinedWorkers
from harness.load.joining import WILDCARD, Joining, joining_name
from harness.load.worker import run_worker, source_toward
from harness.load.worker_reports import TARGET, Target
from harness.spec import BenchSpec


def spec_of(*argv: str) -> BenchSpec:
    return spec_from_args(build_parser().parse_args(["bench", *argv]))


def test_the_options_make_the_join_and_its_defaults() -> None:
    spec = spec_of("--algo", "round_robin", "--join-workers", "3", "--bind", "127.0.0.2", "--join-timeout", "20")
    assert spec.joining == Joining(3, bind="127.0.0.2", master_port=5557, timeout=20.0)
    assert spec.bind_address == "127.0.0.2"
    assert spec_of("--algo", "round_robin").bind_address == "127.0.0.1"
    assert spec.joining.describe() == (
        "the load of each run waits up to 20 s for 3 Locust workers to join: on this machine (other machines "
        "need --bind ADDR) run `harness worker --master 127.0.0.2:5557`"
    )
    assert "on each load host run `harness worker --master 10.0.0.5:5557`" in Joining(1, "10.0.0.5").describe()


def test_options_of_the_join_without_it_are_refused() -> None:
    with pytest.raises(SpecError, match="--bind, --master-port and --join-timeout go with --join-workers N"):
        spec_of("--bind", "127.0.0.2")


@pytest.mark.parametrize(
    ("joining", "others", "message"),
    [
        (Joining(0), {}, "--join-workers must be between 1 and 64, got 0"),
        (Joining(2), {"balancer": "kube-proxy"}, "not through kube-proxy: choose nginx, haproxy or caddy"),
        (Joining(2), {"load_hosts": 2}, "drop --load-workers, --load-hosts, --rate and --driver wrk"),
        (Joining(2), {"rate": 100.0}, "drop --load-workers, --load-hosts"),
        (Joining(2), {"clients": 50}, "drop --workload, --clients, --runtime and --scenario"),
        (Joining(2), {"runtime": "docker"}, "drop --workload, --clients, --runtime and --scenario"),
        (Joining(2), {"scenario": "kill-one"}, "drop --workload, --clients, --runtime and --scenario"),
        (Joining(2, timeout=0), {}, "--join-timeout must be above 0"),
        (Joining(2, bind="192.0.2.7"), {}, "--bind 192.0.2.7 is not an address of this machine"),
        (Joining(2, bind="not-an-address"), {}, "--bind not-an-address is not an address of this machine"),
    ],
)
def test_a_join_that_cannot_work_is_refused_at_its_option(
    joining: Joining, others: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        BenchSpec(algorithms=("round_robin",), joining=joining, **others).validate()


def test_a_master_port_in_use_is_refused() -> None:
    with socket.create_server(("127.0.0.2", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(AddressInUseError, match=f"127.0.0.2:{port} cannot take Locust's master"):
            BenchSpec(algorithms=("round_robin",), joining=Joining(1, "127.0.0.2", port)).validate()


def test_every_address_is_joined_at_this_hosts_name() -> None:
    assert joining_name("127.0.0.2") == "127.0.0.2"
    assert joining_name(WILDCARD) == socket.gethostname()
    assert Joining(1, bind=WILDCARD, master_port=6000).master == f"{socket.gethostname()}:6000"


def test_a_worker_sends_from_the_address_its_route_to_the_balancer_leaves_from() -> None:
    assert source_toward("127.0.0.2", 80) == "127.0.0.1"


class FakeMaster:
    """What JoinedWorkers uses of Locust's MasterRunner: its events, messages and clients; a worker's
    ``client_ready`` makes it a client as Locust's master does."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.handled: list[str] = []
        self.sent: list[tuple[str, Any, str | None]] = []
        self.clients: dict[str, Any] = {}
        events = SimpleNamespace(worker_report=SimpleNamespace(add_listener=lambda listener: None))
        self.environment = SimpleNamespace(events=events)

    def register_message(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    def send_message(self, kind: str, data: Any = None, client_id: str | None = None) -> None:
        self.sent.append((kind, data, client_id))

    def handle_message(self, client_id: str, msg: Any) -> None:
        self.handled.append(client_id)
        self.clients[client_id] = SimpleNamespace(state="ready")

    def join(self, client_id: str, name: str) -> None:
        self.handle_message(client_id, SimpleNamespace(type="client_ready"))
        if client_id in self.clients:
            self.handlers["harness_joined"](msg=SimpleNamespace(data={"worker": name}, node_id=client_id))


def test_each_worker_gets_the_target_under_a_name_of_its_own_until_the_load_starts() -> None:
    master = FakeMaster()
    target = Target("https", 443, "/api/count", "GET", host_header="example.com", ca_pem="PEM")
    workers = JoinedWorkers(master, lambda records: None, Joining(2, timeout=5), target)  # type: ignore[arg-type]
    master.join("a", "edge")
    master.join("b", "edge")
    workers.wait()
    assert [(kind, data["name"], client) for kind, data, client in master.sent] == [
        (TARGET, "edge", "a"), (TARGET, "edge-2", "b"),
    ]  # fmt: skip
    assert Target(**master.sent[1][1]) == dataclasses.replace(target, name="edge-2")
    assert workers.running() == ["edge", "edge-2"]
    master.clients["b"].state = "missing"
    assert workers.running() == ["edge"]
    # Reports count by connection: a worker's first report comes under the name it asked for.
    assert workers.sender("b", {"harness_sender": "edge"}) == "edge-2"
    # The load has started: a worker that connects now is not answered (Locust would hand it users
    # before its target); its retry reaches the next run's master.
    master.join("c", "late")
    assert "c" not in master.handled and "c" not in master.clients
    assert len(master.sent) == 2 and workers.names() == ["edge", "edge-2"]


def test_the_load_waits_for_every_connected_worker_to_have_its_target() -> None:
    master = FakeMaster()
    workers = JoinedWorkers(master, lambda records: None, Joining(1, timeout=5), Target("http", 80, "/", "GET"))  # type: ignore[arg-type]
    master.join("a", "edge")
    master.handle_message("b", SimpleNamespace(type="client_ready"))  # connected, its name not read yet
    assert workers._all_joined() is None
    master.handlers["harness_joined"](msg=SimpleNamespace(data={"worker": "edge"}, node_id="b"))
    assert workers._all_joined() is True


def test_a_joined_worker_refuses_loopback_clients_it_cannot_send_from(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["worker", "--master", "10.0.0.5:5557", "--clients", "50"])
    assert run_worker(args) == 2
    assert "--clients sends from loopback addresses" in capsys.readouterr().err
