import pandas as pd
import pytest

from harness.checks.scale_out_sessions import ScaleOut, new_sessions_to_new_instances
from harness.checks.sessions import Snapshot

SCALE = ScaleOut(at=4.0, new=("d",), size=4, names=("a", "b", "c", "d"))


def sessions(*rows: tuple[float, float, str]) -> pd.DataFrame:
    """(start s, length s, instance) of each session."""
    return pd.DataFrame(
        {
            "time": [start for start, _, _ in rows],
            "latency_ms": [length * 1000 for _, length, _ in rows],
            "instance": [name for _, _, name in rows],
        }
    )


# Three instances holding four sessions each until a few of them end after the scale-out.
HELD = [(0.1, 20, "a"), (0.1, 20, "a"), (0.1, 20, "a"), (0.1, 4.05, "a")]
HELD += [(0.1, 20, "b"), (0.1, 20, "b"), (0.1, 20, "b"), (0.1, 4.15, "b")]
HELD += [(0.1, 20, "c"), (0.1, 20, "c"), (0.1, 20, "c"), (0.1, 4.25, "c")]


def test_new_sessions_on_the_new_instance_until_it_holds_its_share_pass() -> None:
    opened = sessions(*HELD, (4.1, 9, "d"), (4.2, 9, "d"), (4.3, 9, "d"), (4.4, 9, "a"))
    snapshots = [Snapshot(3.9, {"a": 4, "b": 4, "c": 4}), Snapshot(4.5, {"a": 4, "b": 3, "c": 3, "d": 3})]
    verdict = new_sessions_to_new_instances(opened, snapshots, SCALE, users=12, load_start=0.0)
    assert verdict.passed, verdict.summary
    assert verdict.observed == {"opened": 3, "on_new": 3, "beyond_fewest": 0, "time_to_even_s": 0.4}


def test_a_pick_tied_with_the_new_instance_is_least_conn_too() -> None:
    # b lost two more sessions (at 4.15 and 4.18): it holds as few as d when the third opens, and takes it.
    ended = [*HELD[:5], (0.1, 4.05, "b"), (0.1, 4.08, "b"), *HELD[7:]]
    opened = sessions(*ended, (4.1, 9, "d"), (4.12, 9, "d"), (4.2, 9, "b"), (4.3, 9, "d"))
    verdict = new_sessions_to_new_instances(opened, [], SCALE, users=12, load_start=0.0)
    assert verdict.passed, verdict.summary
    assert verdict.observed["beyond_fewest"] == 0 and verdict.observed["on_new"] == 3


def test_sessions_opened_on_the_full_instances_fail_with_the_worst_pick() -> None:
    opened = sessions(*HELD, (4.1, 9, "d"), (4.2, 9, "a"), (4.3, 9, "b"), (5.0, 9, "d"), (5.5, 9, "d"))
    verdict = new_sessions_to_new_instances(opened, [], SCALE, users=12, load_start=0.0)
    assert verdict.passed is False
    assert verdict.observed["beyond_fewest"] == 2, verdict.summary
    assert "worst: at 4.2 s to a while a 3, b 4, c 4, d 1" in verdict.summary, verdict.summary
    assert "never even" in verdict.summary


def test_the_clients_view_may_lag_the_balancers_by_one_session() -> None:
    # b holds 3 at 4.3 s, d 2: the balancer may not have seen d's second session yet.
    opened = sessions(*HELD, (4.1, 9, "d"), (4.2, 9, "d"), (4.3, 9, "b"), (4.4, 9, "d"))
    verdict = new_sessions_to_new_instances(opened, [], SCALE, users=12, load_start=0.0)
    assert verdict.passed, verdict.summary
    assert verdict.observed["on_new"] == 3 and verdict.observed["opened"] == 4


def test_no_session_on_the_new_instance_fails() -> None:
    verdict = new_sessions_to_new_instances(sessions((4.1, 1, "a")), [], SCALE, users=12, load_start=0.0)
    assert verdict.passed is False and "no session reached d" in verdict.summary


@pytest.mark.parametrize("load_start", [0.0, 1_796_288_390.0])
def test_times_are_counted_from_the_load_start(load_start: float) -> None:
    rows = [(start + load_start, length, name) for start, length, name in [*HELD, (4.1, 9, "d")]]
    verdict = new_sessions_to_new_instances(sessions(*rows), [], SCALE, users=12, load_start=load_start)
    assert "at 4.1 s" in verdict.summary, verdict.summary
