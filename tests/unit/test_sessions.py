"""Session workloads: their options, the sampler's consistent snapshots, and least_conn's bound on them."""

import heapq
import random

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.checks.sessions import (
    Slow,
    Snapshot,
    balance_while_slow,
    consistent_snapshots,
    session_balance,
)
from harness.errors import SpecError
from harness.load.session_sampler import Reading, SessionSampler, clients_view
from harness.load.workload import Workload
from harness.spec import BenchSpec


def simulate(picker: str, users: int, instances: int, seed: int, sessions: int = 400) -> list[Snapshot]:
    """Users that each hold exponential sessions back to back through ``picker`` (least_conn picks
    the fewest open, the lowest index on a tie; round_robin the next in turn): the open sessions
    per instance right after each new session is placed, every user then in a session."""
    rng = random.Random(seed)
    open_ = [0] * instances
    ends: list[tuple[float, int]] = []
    turn = 0

    def place(now: float) -> None:
        nonlocal turn
        chosen = open_.index(min(open_)) if picker == "least_conn" else turn % instances
        turn += 1
        open_[chosen] += 1
        heapq.heappush(ends, (now + rng.expovariate(1.0), chosen))

    for _ in range(users):
        place(0.0)
    snapshots = []
    for _ in range(sessions):
        now, ended = heapq.heappop(ends)
        open_[ended] -= 1
        place(now)
        snapshots.append(Snapshot(now, {f"i{index}": count for index, count in enumerate(open_)}))
    return snapshots


@given(users=st.integers(1, 40), instances=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_least_conn_keeps_sessions_within_one_of_even(users: int, instances: int, seed: int) -> None:
    verdict = session_balance(simulate("least_conn", users, instances, seed), users, "WebSocket")
    assert verdict.passed, verdict.summary


def test_round_robin_fails_with_the_worst_snapshot() -> None:
    verdict = session_balance(simulate("round_robin", 12, 3, seed=1), 12, "WebSocket")
    assert verdict.passed is False
    assert verdict.observed["beyond"] > 0 and verdict.observed["worst"]["spread"] > 1, verdict.summary
    assert "12 of 12 users in a session" in verdict.summary


def test_users_between_sessions_widen_the_bound() -> None:
    # Two of six users between sessions: the instance they left may be two short.
    assert Snapshot(1.0, {"a": 2, "b": 2, "c": 0}).allowed(6) == 3
    assert session_balance([Snapshot(1.0, {"a": 2, "b": 2, "c": 0})], 6, "WebSocket").passed
    assert session_balance([Snapshot(1.0, {"a": 4, "b": 2, "c": 0})], 6, "WebSocket").passed is False


def test_no_snapshot_is_not_applicable() -> None:
    assert session_balance([], 10, "WebSocket").passed is None


def test_a_round_is_consistent_when_the_next_reads_the_same() -> None:
    sampler = SessionSampler(lambda: [], "websocket")
    same = [Reading("a", 2, 5), Reading("b", 1, 4)]
    sampler.rounds = [(10.0, same), (10.1, list(same)), (10.2, [Reading("a", 2, 6), Reading("b", 1, 4)])]
    frame = sampler.frame()
    consistent = frame[frame["consistent"]]
    # Only the first round: the second and third differ in a's opened count, and the third has no next.
    assert consistent["time"].tolist() == [10.1, 10.1]
    snapshots = consistent_snapshots(frame, load_start=10.0)
    assert [(round(s.at, 3), s.open) for s in snapshots] == [(0.1, {"a": 2, "b": 1})]


def test_an_instance_that_did_not_answer_breaks_consistency() -> None:
    sampler = SessionSampler(lambda: [], "websocket")
    sampler.rounds = [(0.0, [Reading("a", None, None)]), (0.1, [Reading("a", None, None)])]
    assert not sampler.frame()["consistent"].any()


def test_snapshots_outside_the_window_are_left_out() -> None:
    frame = pd.DataFrame({"time": [1.0, 5.0, 9.0], "instance": ["a"] * 3, "open": [1, 2, 3], "consistent": [True] * 3})
    assert [s.open["a"] for s in consistent_snapshots(frame, 0.0, after=2.0, until=8.0)] == [2]


def test_session_lengths_repeat_per_user_and_differ_between_users() -> None:
    workload = Workload("websocket", hold=1.0)
    first = [workload.lengths(3).next_hold() for _ in range(1)] + [workload.lengths(3).next_hold()]
    assert first[0] == first[1]
    assert workload.lengths(3).next_hold() != workload.lengths(4).next_hold()
    assert Workload("websocket", hold=1.5, durations="fixed").lengths(0).next_hold() == 1.5


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        (Workload("gossip"), "unknown --workload 'gossip'"),
        (Workload("websocket", durations="normal"), "unknown --session-durations"),
        (Workload("websocket", hold=0.0), "--session-hold must be between"),
        (Workload("sse", every=0.0), "--session-every must be above 0"),
        (Workload("mixed", session_share=1.5), "--session-share must be above 0"),
    ],
)
def test_bad_workloads_are_refused(workload: Workload, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        workload.validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"balancer": "client"}, "not through client"),
        ({"rate": 100.0}, "drop --rate"),
        ({"load_workers": 2}, "drop --rate, --driver wrk and --load-workers"),
    ],
)
def test_session_workloads_refuse_what_they_cannot_drive(options: dict[str, object], message: str) -> None:
    spec = BenchSpec(algorithms=("least_conn",), workload=Workload("websocket"), **options)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=message):
        spec.validate()


def test_a_workload_describes_itself() -> None:
    assert Workload().describe() == "short requests"
    assert Workload("mixed", session_share=0.25).describe().startswith("short requests and WebSocket sessions (25%")
    assert Workload("sse", hold=3, durations="fixed").describe() == "Server-Sent Events streams of 3 s"


def test_the_balance_while_an_instance_is_slow_judges_its_window_and_counts_what_began_there() -> None:
    even = {"a": 2, "b": 2, "c": 2}
    piled = {"a": 0, "b": 6, "c": 0}
    snapshots = [Snapshot(1.0, piled), Snapshot(3.0, even), Snapshot(4.0, piled), Snapshot(9.0, piled)]
    opened = pd.DataFrame(
        {"time": [101.0, 103.5, 104.0, 104.5, 106.0], "instance": ["b", "a", "b", "c", ""]}
    )  # the load began at 100; a session no instance answered is left out
    verdict = balance_while_slow(snapshots, opened, Slow("b", 2.0, 8.0), users=6, kind="upload", load_start=100.0)
    assert verdict.check == "open sessions per instance stay within one of even while b is slow"
    assert verdict.passed is False and verdict.observed["snapshots"] == 2 and verdict.observed["beyond"] == 1
    assert verdict.observed["begun"] == {"a": 1, "b": 1, "c": 1}, verdict.observed
    assert "sessions begun meanwhile: a 1, b 1 (slow), c 1" in verdict.summary, verdict.summary
    calm = balance_while_slow([Snapshot(3.0, even)], opened, Slow("b", 2.0, 8.0), 6, "upload", 100.0)
    assert calm.passed, calm.summary


def test_an_upload_workload_counts_upload_sessions() -> None:
    upload = Workload("upload", hold=1, durations="fixed").validate()
    assert upload.has_sessions and upload.session_kind == "upload" and upload.session_word == "upload"
    assert upload.describe() == "uploads the instance reads at a pace of 1 s"


def test_the_clients_view_counts_each_session_from_its_start_to_its_end_on_its_instance() -> None:
    samples = pd.DataFrame(
        {"time": [10.0, 10.0, 11.5, 11.5, 13.0, 13.0], "instance": ["a", "b"] * 3, "open": 0, "consistent": True}
    )
    sessions = pd.DataFrame(
        {
            "time": [9.0, 10.5, 11.0, 9.5],
            "latency_ms": [3000.0, 1000.0, 5000.0, 4000.0],
            "instance": ["a", "a", "a", "b"],
        }
    )
    # a: [9, 12), [10.5, 11.5), [11, 16); b: [9.5, 13.5). At 11.5 the second session of a has just ended.
    assert clients_view(samples, sessions).tolist() == [1, 1, 2, 1, 1, 1]
