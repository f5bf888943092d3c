"""Passive health checks (nginx's max_fails and fail_timeout, and the balancers judged by the same rule):
when the instance was taken out and let back, what a fault cost, and the checks on it.

Expectations come from the config under test (max_fails, fail_timeout, proxy_next_upstream,
proxy_connect_timeout, proxy_read_timeout, workers, zone), never from constants.
Failures are timed by when their attempt ended, successes by when their attempt began:
that is when nginx counted the one and chose the peer for the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.checks import fault_algorithms
from harness.checks.fault_rows import (
    LOG_TIME_TOLERANCE_S,
    FailoverRow,
    FaultObservation,
    clients_view,
    counts_together,
    did_not_run,
    fault_label,
    no_lost_get,
    not_injected_row,
)
from harness.checks.health_models import PassiveChecks
from harness.checks.timeouts import timeout_cost, timeout_outlasting, waited_out
from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import (
    CLUSTER_CHANGE,
    CONNECT_TIMEOUT,
    ERROR_ANSWERS,
    FAILS_TRAFFIC,
    GONE,
    HEALTH_ONLY,
    NO_ANSWER,
    READ_TIMEOUT,
    RESTARTED,
    SLOWER,
    fault_kind,
)

# nginx re-admits a peer fail_timeout to fail_timeout + 1 s after its last failure (it
# keeps time in whole seconds; measured); the extra quarter second covers timer and
# log granularity.
_RECOVERY_SLACK_S = 1.25


# $msec, $request_time and $upstream_response_time each have millisecond resolution.
_LOG_RESOLUTION_S = 0.005


@dataclass(frozen=True)
class Ejection:
    """When nginx took the instance out, per counting scope (one shared count, or each worker's)."""

    at: float | None  # when the last scope to take it out did; None if no scope did
    failures: int  # failed attempts up to then, in-flight ones included
    attempts_while_out: int  # attempts that began while their scope had it out (expected 0)


def _scopes(attempts: pd.DataFrame, shared: bool) -> list[pd.DataFrame]:
    return [attempts] if shared else [group for _, group in attempts.groupby("pid")]


def ejection(attempts: pd.DataFrame, max_fails: int, fail_timeout: float, shared: bool) -> Ejection:
    """Finds, per scope, the end of the max_fails-th failure and counts attempts begun after it.

    Requests already on their way when the instance died fail too and count towards
    max_fails, so more than max_fails failures is normal under concurrent load; what nginx
    promises is that no attempt *begins* on the instance for fail_timeout once it is out.
    """
    failed_total = int(attempts["failed"].sum()) if not attempts.empty else 0
    if max_fails < 1 or attempts.empty:
        return Ejection(None, failed_total, 0)
    # nginx's own probe comes once fail_timeout has run out; leave it out of the count.
    probe_slack = min(0.5, fail_timeout / 4)
    moments: list[float] = []
    failures = 0
    while_out = 0
    for scope in _scopes(attempts, shared):
        failed = scope[scope["failed"]].sort_values("end")
        if len(failed) < max_fails:
            continue
        out_at = float(failed["end"].iloc[max_fails - 1])
        moments.append(out_at)
        failures += int((failed["end"] <= out_at).sum())
        # An attempt's start is computed from three values logged to the millisecond; one
        # that seems to begin within that error of the moment was chosen before it.
        begun = scope[
            (scope["start"] > out_at + _LOG_RESOLUTION_S) & (scope["start"] < out_at + fail_timeout - probe_slack)
        ]
        while_out += len(begun)
    if not moments:
        return Ejection(None, failed_total, 0)
    return Ejection(max(moments), failures, while_out)


def recovery(attempts: pd.DataFrame, rollback: float, shared: bool) -> tuple[float | None, float | None]:
    """The first success after the rollback, and the last failure before it in the scope
    that chose the instance again (each worker keeps its own clock without a zone)."""
    back = attempts[(attempts["start"] > rollback) & ~attempts["failed"]]
    if back.empty:
        return None, None
    first = back.iloc[0]
    scope = attempts if shared else attempts[attempts["pid"] == first["pid"]]
    before = scope[scope["failed"] & (scope["end"] < first["start"])]
    return float(first["start"]), (float(before["end"].max()) if not before.empty else None)


def failover_row(
    observation: FaultObservation, steady: pd.DataFrame, passive: PassiveChecks, shared: bool
) -> FailoverRow:
    """The fault's numbers; ``shared`` says whether all workers count failures together."""
    record = observation.record
    if record.injected_at is None:
        return not_injected_row(record)
    start, rollback = record.injected_at, observation.rollback
    attempts = observation.attempts
    during = attempts[attempts["start"] <= rollback]
    out = ejection(attempts, passive.max_fails, passive.fail_timeout, shared)
    recovered_at, last_failure = recovery(attempts, rollback, shared)
    # A non-final attempt that timed out waiting for an answer (not for a connection) had
    # its request sent: the instance may have run it although another one answered.
    waited = (attempts["end"] - attempts["start"]) >= passive.read_timeout - LOG_TIME_TOLERANCE_S
    duplicated = attempts[(attempts["upstream_status"] == "504") & (attempts["try"] < attempts["tries"] - 1) & waited]
    return FailoverRow(
        **clients_view(record, observation.clients, steady),
        attempts_on_instance=len(during),
        failed_attempts=int(during["failed"].sum()),
        retried_elsewhere=int((during["try"] < during["tries"] - 1).sum()),
        failures_before_eject=out.failures,
        attempts_while_out=out.attempts_while_out if out.at is not None else None,
        time_to_eject_s=round(out.at - start, 3) if out.at is not None else None,
        time_to_recover_s=(
            round(recovered_at - rollback, 3) if recovered_at is not None and record.rolled_back_at else None
        ),
        recovery_after_last_failure_s=(
            round(recovered_at - last_failure, 3) if recovered_at is not None and last_failure is not None else None
        ),
        duplicated_executions=len(duplicated),
    )


def fault_verdicts(
    row: FailoverRow,
    observation: FaultObservation,
    passive: PassiveChecks,
    workers: int,
    zone: bool,
    algorithm: str,
    method: str = "GET",
) -> list[Verdict]:
    """The checks that apply to this fault's kind, each with its numbers."""
    kind = fault_kind(observation.record.kind)
    label = fault_label(row)
    if row.error or row.skipped:
        return [did_not_run(row)]
    verdicts: list[Verdict] = []
    if kind.has(GONE) and method == "POST":
        verdicts.append(fault_algorithms.post_in_flight_fails(row, observation, label))
    elif kind.has(GONE) or kind.has(CLUSTER_CHANGE):
        verdicts.append(_no_lost_get(row, label, passive, "error"))
    if kind.has(NO_ANSWER):
        verdicts.append(_no_lost_get(row, label, passive, "timeout"))
    outlasted = timeout_outlasting(observation, kind, passive)
    if outlasted is not None:
        # Nothing could time out, so nothing failed: the checks of a timeout do not apply.
        verdicts.append(waited_out(row, observation, label, *outlasted))
        return verdicts
    if kind.has(FAILS_TRAFFIC):
        verdicts.append(_ejected_after_max_fails(row, label, passive, counts_together(workers, zone), workers))
    if kind.has(RESTARTED) and observation.record.planned_rollback and observation.record.rolled_back_at:
        verdicts.append(_recovery_time(row, observation, label, passive, counts_together(workers, zone)))
    if kind.has(READ_TIMEOUT):
        verdicts.append(timeout_cost(observation, label, [(passive.read_setting, passive.read_timeout)]))
    if kind.has(CONNECT_TIMEOUT):
        # A request on a connection opened before the fault waits for its answer, not for a
        # connection: the stopped instance's kernel still holds the connection open.
        timeouts = [(passive.connect_setting, passive.connect_timeout)]
        if passive.reuses_connections:
            timeouts.append((passive.read_setting, passive.read_timeout))
        verdicts.append(timeout_cost(observation, label, timeouts))
    if kind.has(ERROR_ANSWERS):
        verdicts.append(_failures_reach_clients_as_configured(row, observation, label, passive))
    if kind.has(HEALTH_ONLY):
        verdicts.append(_passive_checks_ignore_health(row, label))
    if kind.has(RESTARTED) and algorithm == "ip_hash":
        verdicts.append(fault_algorithms.ip_hash_remaps_only_the_dead_instances_clients(observation, label))
    if kind.has(SLOWER) and algorithm == "least_conn":
        if counts_together(workers, zone):
            verdicts.append(fault_algorithms.least_conn_avoids_slow(observation, label))
        else:
            verdicts.append(
                not_applicable(
                    f"{label}: least_conn sends less to the slow instance",
                    f"{workers} workers without a shared zone each count only their own connections",
                )
            )
    return verdicts


def _no_lost_get(row: FailoverRow, label: str, passive: PassiveChecks, condition: str) -> Verdict:
    setting = f"{passive.retry_setting} {' '.join(passive.next_upstream)}"
    if passive.retries(condition):
        return no_lost_get(row, label, f"{setting} retries on {condition}")
    return no_lost_get(row, label, f"{setting} does not retry on {condition}, so requests are lost")


def _ejected_after_max_fails(
    row: FailoverRow, label: str, passive: PassiveChecks, shared: bool, workers: int
) -> Verdict:
    check = f"{label}: taken out after max_fails failures"
    observed = {
        "failures_before_eject": row.failures_before_eject,
        "attempts_while_out": row.attempts_while_out,
        "failed_attempts": row.failed_attempts,
    }
    if passive.max_fails == 0:
        return Verdict(
            check,
            False,
            f"max_fails=0 turns passive health checks off: {row.failed_attempts} failed attempts reached "
            f"{row.instance} during the fault, and it was never taken out",
            observed,
            {"max_fails": "at least 1"},
        )
    scope = "one shared count" if shared else f"{workers} workers counting separately (no zone)"
    if row.attempts_while_out is None:
        return Verdict(
            check,
            False,
            f"{row.instance} was never taken out: {row.failed_attempts} failed attempts, fewer than "
            f"max_fails={passive.max_fails} in every counting scope ({scope})",
            observed,
            {"failures_before_eject": f"at least {passive.max_fails}"},
        )
    return Verdict(
        check,
        row.attempts_while_out == 0,
        f"out after {row.failures_before_eject} failures, {row.time_to_eject_s} s after the fault "
        f"(max_fails={passive.max_fails}, {scope}; requests already in flight count too); "
        f"{row.attempts_while_out} attempts began on it while out "
        f"(expected 0 for fail_timeout={passive.fail_timeout:g}s)",
        observed,
        {"attempts_while_out": 0},
    )


def _recovery_time(
    row: FailoverRow, observation: FaultObservation, label: str, passive: PassiveChecks, shared: bool
) -> Verdict:
    check = f"{label}: back in rotation when fail_timeout lets it"
    observed = {
        "recovery_after_last_failure_s": row.recovery_after_last_failure_s,
        "time_to_recover_s": row.time_to_recover_s,
    }
    if row.time_to_recover_s is None:
        return Verdict(check, False, f"{row.instance} served no request after the rollback", observed)
    if passive.max_fails == 0 or row.attempts_while_out is None:
        # Never taken out: nothing to wait for once it is back.
        reason = "max_fails=0" if passive.max_fails == 0 else "it was never taken out"
        return Verdict(
            check,
            row.time_to_recover_s <= _RECOVERY_SLACK_S,
            f"first success {row.time_to_recover_s} s after the rollback "
            f"(expected at most {_RECOVERY_SLACK_S:g} s: {reason})",
            observed,
            {"time_to_recover_s": [0.0, _RECOVERY_SLACK_S]},
        )
    low, high = passive.fail_timeout, passive.fail_timeout + _RECOVERY_SLACK_S
    recovery = row.recovery_after_last_failure_s
    why = f"fail_timeout={passive.fail_timeout:g}s"
    if passive.active_interval and recovery is not None:
        # The active checks keep it out until one passes after the rollback.
        rollback_after_last_failure = recovery - row.time_to_recover_s
        high = max(passive.fail_timeout, rollback_after_last_failure + passive.active_interval) + _RECOVERY_SLACK_S
        why += f" and an active check every {passive.active_interval:g}s after the rollback"
    passed = recovery is not None and low - LOG_TIME_TOLERANCE_S <= recovery <= high
    waited = ""
    if recovery is not None and recovery > high:
        # Back in rotation by ``high`` shows only on the next picks: under sessions the
        # next one can come a second later. Late means the balancer picked for as many
        # attempts as it has peers between ``high`` and the first success.
        picks = _picks_between(observation, shared, high)
        peers = int(observation.every_attempt["address"].nunique())
        observed["picks_after_due"] = picks
        passed = picks < peers
        waited = f"; {picks} picks between {high:g} s and the first success (expected fewer than {peers}, one per peer)"
    return Verdict(
        check,
        passed,
        f"first success {recovery} s after the last failure, {row.time_to_recover_s} s after the rollback "
        f"(expected {low:g} to {high:g} s after the last failure: {why}){waited}",
        observed,
        {"recovery_after_last_failure_s": [low, high]},
    )


def _picks_between(observation: FaultObservation, shared: bool, due_after_last_failure: float) -> int:
    """The balancer's picks that began after the instance was due back and before its first success."""
    recovered_at, last_failure = recovery(observation.attempts, observation.rollback, shared)
    if recovered_at is None or last_failure is None:
        return 0
    picks = observation.every_attempt["start"]
    due = last_failure + due_after_last_failure
    return int(((picks > due + _LOG_RESOLUTION_S) & (picks < recovered_at - _LOG_RESOLUTION_S)).sum())


def _failures_reach_clients_as_configured(
    row: FailoverRow, observation: FaultObservation, label: str, passive: PassiveChecks
) -> Verdict:
    status = int(observation.record.parameters.get("fail_status", 503))
    check = f"{label}: {status} answers reach clients as {passive.retry_setting} says"
    setting = f"{passive.retry_setting} {' '.join(passive.next_upstream)}"
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status}
    if passive.retries(f"http_{status}"):
        return Verdict(
            check,
            row.client_errors == 0,
            f"{row.client_errors} client errors (expected 0: {setting} retries http_{status})",
            observed,
            {"client_errors": 0},
        )
    return Verdict(
        check,
        row.client_errors > 0,
        f"{row.client_errors} client errors {row.errors_by_status}: the instance's own {status} "
        f"answers reach clients ({setting} does not name http_{status})",
        observed,
        {"client_errors": "more than 0"},
    )


def _passive_checks_ignore_health(row: FailoverRow, label: str) -> Verdict:
    check = f"{label}: passive checks do not see the health endpoint"
    return Verdict(
        check,
        row.attempts_on_instance > 0 and row.client_errors == 0,
        f"{row.instance} answered 503 on /api/health only and still served {row.attempts_on_instance} "
        f"requests with {row.client_errors} client errors (passive checks only see real traffic)",
        {"attempts_on_instance": row.attempts_on_instance, "client_errors": row.client_errors},
        {"attempts_on_instance": "more than 0", "client_errors": 0},
    )
