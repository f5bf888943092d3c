"""Faults that leave requests unanswered, judged on the timeout that notices them: an
affected request waits the timeout and moves on, or, when the fault ended first, waited for
the instance and never timed out."""

from __future__ import annotations

from harness.checks.fault_rows import LOG_TIME_TOLERANCE_S, FailoverRow, FaultObservation
from harness.checks.health_models import PassiveChecks
from harness.checks.verdict import Verdict
from harness.results.faults import CONNECT_TIMEOUT, NO_ANSWER, FaultKind


def timeout_outlasting(
    observation: FaultObservation, kind: FaultKind, passive: PassiveChecks
) -> tuple[str, float] | None:
    """The timeout setting (name, seconds) a fault that leaves requests unanswered ended
    before, if it did: then every request sent to it waited until it answered again."""
    record = observation.record
    if not kind.has(NO_ANSWER) or record.injected_at is None or not record.rolled_back_at:
        return None
    if kind.has(CONNECT_TIMEOUT):
        setting, seconds = passive.connect_setting, passive.connect_timeout
    else:
        setting, seconds = passive.read_setting, passive.read_timeout
    lasted = record.rolled_back_at - record.injected_at
    return (setting, seconds) if lasted < seconds - LOG_TIME_TOLERANCE_S else None


def waited_out(row: FailoverRow, observation: FaultObservation, label: str, setting: str, seconds: float) -> Verdict:
    record = observation.record
    lasted = (record.rolled_back_at or 0.0) - (record.injected_at or 0.0)
    check = f"{label}: ended before {setting}: requests waited for it, none timed out"
    attempts = observation.attempts
    timed_out = int((attempts["upstream_status"] == "504").sum())
    waits = attempts["end"] - attempts["start"]
    waited = f"the longest waited {float(waits.max()):.3f} s" if not waits.empty else "none began on it"
    taken_out = row.attempts_while_out is not None
    out = f"taken out after {row.failures_before_eject} failures" if taken_out else "it was never taken out"
    observed = {"attempts": len(attempts), "timed_out": timed_out, "taken_out": taken_out}
    return Verdict(
        check,
        timed_out == 0 and not taken_out,
        f"{len(attempts)} attempts on {record.instance}, {timed_out} timed out, {out}; {waited} "
        f"(expected none timed out and never taken out: it was unanswering {lasted:.1f} s, "
        f"less than {setting}={seconds:g}s)",
        observed,
        {"timed_out": 0, "taken_out": False},
    )


def timeout_cost(observation: FaultObservation, label: str, timeouts: list[tuple[str, float]]) -> Verdict:
    """Timed-out attempts waited one of ``timeouts`` (setting, seconds) and up to 1 s more;
    a second timeout applies to connections kept open from before the fault."""
    names = " or ".join(setting for setting, _ in timeouts)
    check = f"{label}: an affected request waits {names}, then moves on"
    attempts = observation.attempts
    timed_out = attempts[attempts["upstream_status"] == "504"]
    waits = timed_out["end"] - timed_out["start"]
    ranges = [(seconds, seconds + 1.0) for _, seconds in timeouts]
    expected = " or ".join(f"{low:g} to {high:g} s" for low, high in ranges)
    settings = ", ".join(f"{setting}={seconds:g}s" for setting, seconds in timeouts)
    observed = {"timed_out_attempts": len(waits), "median_wait_s": None if waits.empty else float(waits.median())}
    if waits.empty:
        return Verdict(
            check, False, f"no attempt timed out on {observation.record.instance}", observed, {"wait_s": ranges}
        )
    median = float(waits.median())
    return Verdict(
        check,
        any(low - LOG_TIME_TOLERANCE_S <= median <= high for low, high in ranges),
        f"{len(waits)} attempts on {observation.record.instance} timed out; the median waited {median:.3f} s "
        f"(expected {expected}: {settings})",
        observed,
        {"wait_s": ranges},
    )
