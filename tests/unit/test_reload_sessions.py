import pandas as pd

from harness.checks.reload_sessions import Reload, no_new_session_on_old_workers, sessions_survive_reload


def sessions(*rows: tuple[float, float, str]) -> pd.DataFrame:
    """(start s, length s, error) of each session."""
    return pd.DataFrame(
        {
            "time": [start for start, _, _ in rows],
            "latency_ms": [length * 1000 for _, length, _ in rows],
            "error": [error for _, _, error in rows],
        }
    )


def test_sessions_open_at_the_reload_that_end_as_asked_pass_with_the_old_workers_lifetime() -> None:
    opened = sessions((1.0, 2.0, ""), (3.0, 3.0, ""), (3.5, 4.0, ""), (4.5, 1.0, ""))
    verdict = sessions_survive_reload(opened, Reload(at=4.0, old_gone_after=3.6), load_start=0.0, kind="SSE")
    assert verdict.passed, verdict.summary
    assert verdict.observed == {
        "open_at_reload": 2, "survived": 2, "cut": 0, "old_workers_lived_s": 3.6, "last_session_ended_s": 3.5,
    }  # fmt: skip
    assert "2 of 2 SSE sessions open at the reload" in verdict.summary


def test_a_session_cut_by_the_reload_fails_with_its_error() -> None:
    opened = sessions((3.0, 3.0, ""), (3.5, 1.5, "SessionCut: ended after 1.50 s of 4.00 s"))
    verdict = sessions_survive_reload(opened, Reload(at=4.0, old_gone_after=1.0), load_start=0.0, kind="WebSocket")
    assert verdict.passed is False
    assert verdict.observed["cut"] == 1 and "first cut: SessionCut: ended after 1.50 s" in verdict.summary


def test_no_session_open_at_the_reload_is_not_a_pass() -> None:
    opened = sessions((1.0, 1.0, ""), (5.0, 1.0, ""))
    verdict = sessions_survive_reload(opened, Reload(at=4.0, old_gone_after=None), load_start=0.0, kind="SSE")
    assert verdict.passed is False and "nothing to survive it" in verdict.summary


def test_times_count_from_the_load_start() -> None:
    opened = sessions((1_796_288_393.0, 3.0, ""))
    reload = Reload(at=4.0, old_gone_after=2.0)
    verdict = sessions_survive_reload(opened, reload, load_start=1_796_288_390.0, kind="SSE")
    assert verdict.observed["open_at_reload"] == 1 and verdict.passed


def served(*rows: tuple[float, int]) -> pd.DataFrame:
    """(start s, worker pid) of each session in the balancer's log."""
    return pd.DataFrame({"start": [start for start, _ in rows], "pid": [pid for _, pid in rows]})


def test_sessions_after_the_reload_on_new_workers_pass() -> None:
    log = served((3.0, 11), (4.2, 11), (5.5, 21), (6.0, 22))
    verdict = no_new_session_on_old_workers(
        log, signalled=4.0, old_workers=frozenset({11, 12}), load_start=0.0, kind="SSE"
    )
    assert verdict.passed, verdict.summary
    assert verdict.observed == {"after_reload": 2, "on_old_workers": 0}  # 4.2 s is within the handover


def test_a_session_an_old_worker_took_after_the_reload_fails() -> None:
    log = served((5.5, 12), (6.0, 22))
    verdict = no_new_session_on_old_workers(
        log, signalled=4.0, old_workers=frozenset({11, 12}), load_start=0.0, kind="SSE"
    )
    assert verdict.passed is False
    assert "1 of 2 sessions" in verdict.summary and "pids 11, 12" in verdict.summary, verdict.summary
