"""gRPC: the instances' service and the client that calls it on one connection, the workload,
the configs that pass gRPC, and the checks on where one connection's calls went."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.backends import control
from harness.backends.instance import Instance
from harness.balancers.kubeproxy.config import load_config as load_service
from harness.checks.grpc_connections import (
    calls_by_connection,
    connections_pinned,
    one_connection_on_one,
    one_connection_spread,
)
from harness.compare import _no_h2_config
from harness.errors import SpecError
from harness.infra import infra_path
from harness.load.grpc_client import STREAM, UNARY, GrpcConnection, frame, unframe
from harness.load.records import COLUMNS
from harness.load.workload import Workload
from harness.plan import prepare
from harness.spec import BenchSpec


@pytest.fixture(scope="module")
def served() -> Iterator[Instance]:
    """An instance process serving gRPC, read from its ready line (this process runs under gevent)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.backends.serve", "--name", "app-1", "--grpc"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["ready"] and ready["grpc_port"] > 0, ready
        yield Instance(
            "app-1",
            "app",
            "127.0.0.1",
            ready["port"],
            ready["control_port"],
            ready["pid"],
            grpc_port=ready["grpc_port"],
        )
    finally:
        process.terminate()
        process.wait(10)


def test_unary_and_stream_calls_name_the_instance_in_their_trailers(served: Instance) -> None:
    with GrpcConnection(f"http://{served.address}") as connection:
        answers = [connection.call(UNARY) for _ in range(3)]
        stream = connection.call(STREAM, b'{"messages": 3, "every": 0.001}')
        unknown = connection.call("/harness.Echo/Nothing")
    assert [(a.ok, a.instance, a.messages, a.status) for a in answers] == [(True, "app-1", [b"app-1"], 200)] * 3
    assert stream.ok and stream.instance == "app-1" and len(stream.messages) == 3 and b'"n": 3' in stream.messages[-1]
    assert not unknown.ok and unknown.grpc_status == 12 and unknown.status == 500, unknown.describe()
    state = control.state(served)
    assert state["sessions"]["grpc"] == 0 and state["sessions_opened"]["grpc"] == 1 and state["count"] == 3, state
    assert state["connections"] == 1, state  # five calls, one connection


def test_a_failing_instance_fails_its_calls_with_unavailable(served: Instance) -> None:
    control.set_mode(served, fail_rate=1.0)
    try:
        with GrpcConnection(f"http://{served.address}") as connection:
            answer = connection.call(UNARY)
    finally:
        control.reset(served)
    assert answer.grpc_status == 14 and answer.instance == "app-1" and "failing on purpose" in answer.describe()


def test_messages_are_framed_and_a_partial_one_waits_for_its_rest() -> None:
    wire = bytearray(frame(b"one") + frame(b"") + frame(b"three")[:6])
    assert unframe(wire) == [b"one", b""] and len(wire) == 6
    wire += frame(b"three")[6:]
    assert unframe(wire) == [b"three"] and not wire


def test_the_grpc_workload_may_call_back_to_back_and_says_so() -> None:
    assert Workload("grpc", every=0).validate().describe().startswith("gRPC unary calls (back to back)")
    assert not Workload("grpc").has_sessions and Workload("grpc").chosen and not Workload().chosen
    with pytest.raises(SpecError, match="--session-every must be above 0"):
        Workload("websocket", every=0).validate()
    assert "connection" in COLUMNS


def calls(per_connection: dict[str, list[str]]) -> pd.DataFrame:
    rows = [
        {"connection": name, "instance": instance, "client": name.split("#")[0]}
        for name, instances in per_connection.items()
        for instance in instances
    ]
    rows.append({"connection": "", "instance": "app-9", "client": "x"})  # a record of no connection: left out
    return pd.DataFrame(rows)


def test_one_connection_reaching_several_instances_passes_and_one_reaching_one_fails() -> None:
    load = calls({"a#1": ["app-1", "app-2", "app-3"] * 10, "b#2": ["app-2"] * 25, "c#3": ["app-1"] * 5})
    assert calls_by_connection(load).to_dict("index") == {
        "a#1": {"calls": 30, "instances": 3}, "b#2": {"calls": 25, "instances": 1}, "c#3": {"calls": 5, "instances": 1},
    }  # fmt: skip
    spread = one_connection_spread(["app-1", "app-2", "app-3"] * 10, 3, "nginx", load)
    assert spread.passed and "reached 3 of 3 instances" in spread.summary, spread.summary
    # Under load only connections of 20+ calls are counted, and reported rather than judged.
    assert "under load 1 of 2 connections with 20+ calls reached all 3" in spread.summary, spread.summary
    pinned = one_connection_spread(["app-2"] * 30, 3, "nginx", load)
    assert pinned.passed is False and "reached 1 of 3 instances (app-2)" in pinned.summary, pinned.summary


def test_a_balancer_of_connections_pins_each_and_fails_a_connection_it_spread() -> None:
    load = calls({"a#1": ["app-1"] * 8, "b#2": ["app-3"] * 9, "c#3": ["app-3"] * 4})
    verdict = connections_pinned(load, "kube-proxy")
    assert verdict.passed, verdict.summary
    assert "3 of 3 connections kept all their calls" in verdict.summary and "app-1 1, app-3 2" in verdict.summary
    spread = connections_pinned(calls({"a#1": ["app-1", "app-2"], "b#2": ["app-3"]}), "kube-proxy")
    assert spread.passed is False and "spread over several: a#1" in spread.summary, spread.summary
    probe = one_connection_on_one(["app-2"] * 30, 3, "kube-proxy", "it balances connections")
    assert probe.passed and "reached 1 of 3 instances" in probe.summary
    assert one_connection_on_one(["app-1", "app-2"], 3, "kube-proxy", "x").passed is False


def test_a_service_port_named_grpc_carries_grpc() -> None:
    grpc = load_service(infra_path("k8s", "07-service-grpc.yaml"))
    assert grpc.speaks_grpc and grpc.grpc_services == ["api-grpc"] and grpc.port == 50051
    http = load_service(infra_path("k8s", "01-service-clusterip.yaml"))
    assert not http.speaks_grpc and http.grpc_services == []


def test_the_workload_and_the_route_must_both_speak_grpc(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with pytest.raises(SpecError, match=r"passes HTTP/1\.1: give a config whose route passes gRPC"):
        prepare(BenchSpec(algorithms=("round_robin",), config=infra_path("nginx", "nginx-round-robin.conf"),
                          workload=Workload("grpc"), results_dir=results))  # fmt: skip
    with pytest.raises(SpecError, match="passes gRPC over HTTP/2: run it with --workload grpc"):
        prepare(
            BenchSpec(algorithms=("round_robin",), config=infra_path("nginx", "nginx-grpc.conf"), results_dir=results)
        )
    with pytest.raises(SpecError, match="no shipped nginx config passes gRPC with least_conn"):
        prepare(BenchSpec(algorithms=("least_conn",), workload=Workload("grpc"), results_dir=results))
    with pytest.raises(SpecError, match="not through client"):
        BenchSpec(algorithms=("round_robin",), balancer="client", workload=Workload("grpc")).validate()
    with pytest.raises(SpecError, match="local processes, not on --runtime docker"):
        BenchSpec(algorithms=("round_robin",), runtime="docker", workload=Workload("grpc")).validate()
    with pytest.raises(SpecError, match="drop --rate"):
        BenchSpec(algorithms=("round_robin",), rate=100.0, workload=Workload("grpc")).validate()
    planned = prepare(BenchSpec(algorithms=("round_robin",), workload=Workload("grpc"), results_dir=results))
    assert planned.only.config.path.name == "nginx-grpc.conf" and planned.only.config.grpc_services == ["api-grpc"]


def test_compare_balancers_runs_the_balancers_that_ship_a_grpc_config() -> None:
    assert set(_no_h2_config("round_robin", grpc=True)) == {"caddy", "client"}
    assert set(_no_h2_config("round_robin", grpc=False)) == {"caddy", "client"}
    assert set(_no_h2_config("least_conn", grpc=False)) == {"nginx", "haproxy", "caddy", "client", "kube-proxy"}
