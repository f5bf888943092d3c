import pandas as pd

from harness.checks.lost_instance_sessions import Lost, sessions_around_a_hung_instance, sessions_around_a_lost_instance

LOST = Lost("b", signalled=4.0, gone=4.1, until=8.0)


def sessions(*rows: tuple[float, float, str, str]) -> pd.DataFrame:
    """(start s, length s, instance, error) of each session."""
    return pd.DataFrame(
        {
            "time": [row[0] for row in rows],
            "latency_ms": [row[1] * 1000 for row in rows],
            "instance": [row[2] for row in rows],
            "error": [row[3] for row in rows],
        }
    )


CUT = "SessionCut: ended after 1.10 s of 3.00 s"


def test_new_sessions_on_the_others_pass_and_the_cut_ones_are_shown() -> None:
    opened = sessions(
        (3.0, 1.1, "b", CUT), (3.5, 0.7, "b", CUT), (3.0, 3.0, "a", ""), (4.2, 2.0, "a", ""), (4.3, 2.0, "c", "")
    )
    verdict = sessions_around_a_lost_instance(opened, LOST, load_start=0.0, kind="WebSocket")
    assert verdict.passed, verdict.summary
    assert verdict.observed == {
        "opened_while_gone": 2, "on_lost": 0, "failed": 0, "held": 2, "held_ended_early": 2, "noticed_median_s": 0.15,
    }  # fmt: skip
    assert "of the 2 it held, 2 ended early" in verdict.summary, verdict.summary


def test_a_session_that_failed_while_the_instance_was_gone_fails_with_its_error() -> None:
    opened = sessions((4.2, 0.0, "", "ConnectionRefusedError: [Errno 111]"), (4.3, 2.0, "c", ""))
    verdict = sessions_around_a_lost_instance(opened, LOST, load_start=0.0, kind="WebSocket")
    assert verdict.passed is False
    assert verdict.observed["failed"] == 1 and "first failure: ConnectionRefusedError" in verdict.summary


def test_a_session_on_the_lost_instance_after_it_was_gone_fails() -> None:
    opened = sessions((4.2, 2.0, "b", ""), (4.3, 2.0, "c", ""))
    verdict = sessions_around_a_lost_instance(opened, LOST, load_start=0.0, kind="SSE")
    assert verdict.passed is False and verdict.observed["on_lost"] == 1


def test_no_session_opened_while_it_was_gone_is_not_a_pass() -> None:
    verdict = sessions_around_a_lost_instance(sessions((1.0, 2.0, "a", "")), LOST, load_start=0.0, kind="SSE")
    assert verdict.passed is False and verdict.observed["opened_while_gone"] == 0


HUNG = Lost("b", signalled=4.0, gone=4.0, until=8.0)


def test_a_hung_instances_sessions_stall_and_the_new_ones_on_the_others_pass() -> None:
    # b held one session through the hang (it ended when b ran again) and got one new one,
    # which waited for it; the others served theirs.
    opened = sessions((3.5, 4.5, "b", ""), (5.0, 3.2, "b", ""), (4.5, 1.0, "a", ""), (5.5, 1.0, "c", ""))
    verdict = sessions_around_a_hung_instance(opened, HUNG, load_start=0.0, kind="WebSocket")
    assert verdict.passed, verdict.summary
    assert verdict.observed == {
        "opened_while_hung": 3, "on_others": 2, "failed_on_others": 0, "waited_on_hung": 1, "unanswered": 0,
        "held": 1, "held_stalled_median_s": 4.0,
    }  # fmt: skip
    assert "the 1 it held stalled and ended 4.0 s after the signal" in verdict.summary, verdict.summary


def test_a_session_that_failed_on_another_instance_while_one_hung_fails_with_its_error() -> None:
    opened = sessions((4.5, 0.2, "a", "SessionCut: ended after 0.20 s of 1.00 s"), (5.5, 1.0, "c", ""))
    verdict = sessions_around_a_hung_instance(opened, HUNG, load_start=0.0, kind="WebSocket")
    assert verdict.passed is False
    assert verdict.observed["failed_on_others"] == 1 and "first failure: SessionCut" in verdict.summary
