"""Ejection and recovery by counting scope, on synthetic attempts."""

import pandas as pd

from harness.checks.fault_rows import observe
from harness.checks.health_models import PassiveChecks
from harness.checks.passive import ejection, failover_row, fault_verdicts, recovery
from harness.checks.verdict import Verdict
from harness.results.faults import FaultRecord


def attempt_rows(rows: list[tuple[float, float, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "start": start,
                "end": end,
                "address": "a",
                "upstream_status": status,
                "failed": status == "-" or status.startswith("5"),
                "try": 0,
                "tries": 2,
                "pid": pid,
            }
            for start, end, status, pid in rows
        ]
    )


def test_out_after_max_fails_with_nothing_begun_while_out() -> None:
    rows = attempt_rows([(10.0, 10.001, "502", 1), (10.002, 10.003, "502", 1), (10.004, 10.005, "502", 1)])
    out = ejection(rows, max_fails=3, fail_timeout=10, shared=True)
    assert (out.at, out.failures, out.attempts_while_out) == (10.005, 3, 0)


def test_requests_in_flight_count_but_are_not_attempts_while_out() -> None:
    # Four requests were on their way when the instance died; all four fail.
    rows = attempt_rows([(9.99, 10.001, "502", 1)] * 4)
    out = ejection(rows, max_fails=3, fail_timeout=10, shared=True)
    assert (out.failures, out.attempts_while_out) == (4, 0)


def test_an_attempt_begun_after_the_instance_was_out_is_counted() -> None:
    rows = attempt_rows([(10.0, 10.001, "502", 1), (10.5, 10.501, "502", 1)])
    assert ejection(rows, max_fails=1, fail_timeout=10, shared=True).attempts_while_out == 1


def test_nginx_own_probe_after_fail_timeout_is_not_counted() -> None:
    rows = attempt_rows([(10.0, 10.001, "502", 1), (20.2, 20.201, "502", 1)])
    assert ejection(rows, max_fails=1, fail_timeout=10, shared=True).attempts_while_out == 0


def test_without_a_zone_each_worker_counts_on_its_own() -> None:
    rows = attempt_rows([(10.0, 10.001, "502", 1), (10.01, 10.011, "502", 2), (10.02, 10.021, "502", 2)])
    shared = ejection(rows, max_fails=2, fail_timeout=10, shared=True)
    per_worker = ejection(rows, max_fails=2, fail_timeout=10, shared=False)
    assert shared.attempts_while_out == 1  # one count: the third attempt came after two failures
    assert per_worker.attempts_while_out == 0 and per_worker.failures == 2  # worker 1 never reached 2


def test_max_fails_zero_never_ejects() -> None:
    rows = attempt_rows([(10.0, 10.001, "502", 1)] * 5)
    assert ejection(rows, max_fails=0, fail_timeout=10, shared=True).at is None


def test_a_4xx_answer_is_not_a_failure() -> None:
    rows = attempt_rows([(10.0, 10.001, "404", 1)] * 5)
    assert ejection(rows, max_fails=1, fail_timeout=10, shared=True).at is None


def test_recovery_is_timed_from_the_last_failure_of_the_worker_that_chose_it_again() -> None:
    rows = attempt_rows(
        [(10.0, 10.001, "502", 1), (12.0, 12.001, "502", 2), (13.0, 13.002, "200", 1), (13.5, 13.6, "200", 2)]
    )
    assert recovery(rows, rollback=11.0, shared=False) == (13.0, 10.001)
    assert recovery(rows, rollback=11.0, shared=True) == (13.0, 12.001)
    assert recovery(rows, rollback=14.0, shared=True) == (None, None)


PASSIVE = PassiveChecks(
    max_fails=1, fail_timeout=10, next_upstream=("error", "timeout"), connect_timeout=1, read_timeout=5
)


def _verdicts(attempts: pd.DataFrame, kind: str, rolled_back_at: float) -> list[Verdict]:
    record = FaultRecord(
        1, kind, kind, "api-gateway-1", "a", planned_at=10.0, injected_at=10.0, rolled_back_at=rolled_back_at,
        planned_rollback=True,
    )  # fmt: skip
    clients = pd.DataFrame({"time": [10.0], "latency_ms": [1.0], "status": [200]})
    observation = observe(record, clients, attempts, load_end=25.0, until=25.0)
    row = failover_row(observation, clients, PASSIVE, shared=True)
    return fault_verdicts(row, observation, PASSIVE, workers=1, zone=True, algorithm="least_conn")


def test_a_hang_shorter_than_the_read_timeout_is_waited_out_and_never_ejects() -> None:
    # Hung 3 s against proxy_read_timeout 5 s: the attempt sent to it waits until it runs again.
    attempts = attempt_rows([(10.5, 13.01, "200", 1)])
    checks = [v.check for v in _verdicts(attempts, "hang", rolled_back_at=13.0)]
    assert checks == [
        "fault 1 (hang api-gateway-1): GET requests lose nothing",
        "fault 1 (hang api-gateway-1): ended before proxy_read_timeout: requests waited for it, none timed out",
    ]
    waited = _verdicts(attempts, "hang", rolled_back_at=13.0)[1]
    assert waited.passed and "less than proxy_read_timeout=5s" in waited.summary, waited.summary


def test_a_hang_longer_than_the_read_timeout_is_judged_on_its_timeouts() -> None:
    attempts = attempt_rows([(10.5, 15.5, "504", 1)])
    checks = [v.check for v in _verdicts(attempts, "hang", rolled_back_at=18.0)]
    assert "fault 1 (hang api-gateway-1): an affected request waits proxy_read_timeout, then moves on" in checks


def _recovery_verdict(other_picks: list[float]) -> Verdict:
    """A kill at 10 s rolled back at 12 s: the last failure ends at 10.001 s, fail_timeout is
    10 s, and the instance's first success begins at 21.4 s, past 10 + 1.25 s of slack."""
    on_instance = attempt_rows([(10.0, 10.001, "502", 1), (21.402, 22.5, "101", 1)])
    elsewhere = attempt_rows([(start, start + 1.0, "101", 1) for start in other_picks]).assign(address="b")
    attempts = pd.concat([on_instance, elsewhere], ignore_index=True)
    record = FaultRecord(
        1, "kill", "kill", "api-gateway-1", "a", planned_at=10.0, injected_at=10.0, rolled_back_at=12.0,
        planned_rollback=True,
    )  # fmt: skip
    clients = pd.DataFrame({"time": [10.0], "latency_ms": [1.0], "status": [101]})
    passive = PassiveChecks(max_fails=1, fail_timeout=10, next_upstream=("error",), connect_timeout=1, read_timeout=5)
    observation = observe(record, clients, attempts, load_end=25.0, until=25.0)
    row = failover_row(observation, clients, passive, shared=True)
    verdicts = fault_verdicts(row, observation, passive, workers=1, zone=True, algorithm="least_conn")
    return next(v for v in verdicts if "back in rotation" in v.check)


def test_a_late_recovery_passes_when_no_pick_came_between_due_and_its_first_success() -> None:
    # Sessions a second long make picks seldom: none between 11.251 s and 11.401 s.
    verdict = _recovery_verdict([5.0, 21.0, 22.0])
    assert verdict.passed, verdict.summary
    assert "0 picks between 11.25 s and the first success" in verdict.summary


def test_a_late_recovery_fails_when_the_balancer_picked_others_meanwhile() -> None:
    verdict = _recovery_verdict([21.30, 21.35])
    assert not verdict.passed, verdict.summary
    assert "2 picks between 11.25 s and the first success (expected fewer than 2, one per peer)" in verdict.summary
