"""What a fault cost, from the balancer's log and the clients' records joined, and the checks on it.

Expectations come from the config under test (max_fails, fail_timeout, proxy_next_upstream,
proxy_connect_timeout, proxy_read_timeout, workers, zone), never from constants.
Failures are timed by when their attempt ended, successes by when their attempt began:
that is when nginx counted the one and chose the peer for the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from harness.checks.health_models import PassiveChecks
from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import FaultRecord

# nginx re-admits a peer fail_timeout to fail_timeout + 1 s after its last failure (it
# keeps time in whole seconds; measured); the extra quarter second covers timer and
# log granularity.
_RECOVERY_SLACK_S = 1.25
# Access logs keep milliseconds, and an attempt's start is stamped just before its pick:
# a recovery measured from them may read up to this much early.
LOG_TIME_TOLERANCE_S = 0.05
# $msec, $request_time and $upstream_response_time each have millisecond resolution.
_LOG_RESOLUTION_S = 0.005


def finished_at(clients: pd.DataFrame) -> pd.Series:
    """When each client request ended, seconds since the epoch."""
    return clients["time"] + clients["latency_ms"] / 1000.0


@dataclass(frozen=True)
class FailoverRow:
    """One fault's numbers; times in seconds, latencies in milliseconds."""

    step: int
    fault: str
    instance: str
    at_s: float | None
    client_errors: int
    errors_by_status: dict[str, int]
    attempts_on_instance: int
    failed_attempts: int
    retried_elsewhere: int
    failures_before_eject: int
    attempts_while_out: int | None
    time_to_eject_s: float | None
    time_to_recover_s: float | None
    recovery_after_last_failure_s: float | None
    duplicated_executions: int
    p50_window_ms: float | None
    p99_window_ms: float | None
    p50_steady_ms: float | None
    p99_steady_ms: float | None
    skipped: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultObservation:
    """The data one fault's numbers are computed from."""

    record: FaultRecord
    rollback: float  # the rollback, or the end of the load
    effect_end: float  # when the instance served again (or the end of the load)
    attempts: pd.DataFrame  # attempts on the faulty instance open at the fault or begun after it
    clients: pd.DataFrame  # client requests open between the fault and the instance serving again
    all_clients: pd.DataFrame  # every client request of the run


def observe(
    record: FaultRecord, clients: pd.DataFrame, attempts: pd.DataFrame, load_end: float, until: float
) -> FaultObservation:
    """Selects what belongs to one fault; ``until`` is when the next fault on the same
    instance began (or the end of the load), so two faults on one instance stay apart."""
    start = record.injected_at or 0.0
    rollback = record.rolled_back_at or load_end
    on_instance = attempts[
        (attempts["address"] == record.address) & (attempts["end"] >= start) & (attempts["start"] < until)
    ].sort_values("start")
    back = on_instance[(on_instance["start"] > rollback) & ~on_instance["failed"]]
    # The fault's effects last until the instance serves again, which with passive checks
    # can be fail_timeout after the rollback; an instance that never came back was out
    # until the end of the load. A change of the whole cluster (a scale, a reload) lasts
    # its reload and a second after.
    served_again = float(back["start"].min()) if not back.empty else load_end
    effect_end = max(rollback, served_again if record.address else rollback + 1.0)
    # A request counts for the fault when it was still open at the fault: those already on
    # their way to the instance when it died are the first to suffer.
    window = clients[(finished_at(clients) >= start) & (clients["time"] <= effect_end)]
    return FaultObservation(record, rollback, effect_end, on_instance, window, clients)


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


def percentile(values: pd.Series, q: float) -> float | None:
    return None if values.empty else round(float(values.quantile(q)), 1)


def not_injected_row(record: FaultRecord) -> FailoverRow:
    """The row of a fault that never acted (skipped, or the load ended first)."""
    return FailoverRow(
        record.index, record.description, record.instance, None, 0, {}, 0, 0, 0, 0, None,
        None, None, None, 0, None, None, None, None,
        skipped=record.skipped or "not injected", error=record.error,
    )  # fmt: skip


def clients_view(record: FaultRecord, window: pd.DataFrame, steady: pd.DataFrame) -> dict[str, Any]:
    """The row's fields that come from the clients' side, the same for every balancer."""
    errors = window[(window["status"] < 200) | (window["status"] >= 300)]
    return {
        "step": record.index,
        "fault": record.description,
        "instance": record.instance,
        "at_s": round(record.planned_at, 3),
        "client_errors": len(errors),
        "errors_by_status": {str(k): int(v) for k, v in errors["status"].value_counts().items()},
        "p50_window_ms": percentile(window["latency_ms"], 0.5),
        "p99_window_ms": percentile(window["latency_ms"], 0.99),
        "p50_steady_ms": percentile(steady["latency_ms"], 0.5),
        "p99_steady_ms": percentile(steady["latency_ms"], 0.99),
        "error": record.error,
    }


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


def fault_label(row: FailoverRow) -> str:
    return f"fault {row.step} ({row.fault} {row.instance})"


def did_not_run(row: FailoverRow) -> Verdict:
    """The verdict of a fault that failed to run (FAIL) or was skipped (N/A), with the reason."""
    if row.error:
        return Verdict(fault_label(row), False, f"the fault did not run as planned: {row.error}")
    return not_applicable(fault_label(row), f"skipped: {row.skipped}")


def counts_together(workers: int, zone: bool) -> bool:
    """Whether nginx's workers share one failure count and one connection count per peer:
    with a single worker, or with a shared memory zone on the upstream."""
    return zone or workers == 1


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
    kind = observation.record.kind
    label = fault_label(row)
    if row.error or row.skipped:
        return [did_not_run(row)]
    verdicts: list[Verdict] = []
    if kind in {"kill", "stop", "restart"} and method == "POST":
        verdicts.append(_post_in_flight_fails(row, observation, label))
    elif kind in {"kill", "stop", "restart", "scale", "reload"}:
        verdicts.append(_no_lost_get(row, label, passive, "error"))
    if kind in {"hang", "blackhole"}:
        verdicts.append(_no_lost_get(row, label, passive, "timeout"))
    if kind in {"kill", "stop", "hang", "blackhole"}:
        verdicts.append(_ejected_after_max_fails(row, label, passive, counts_together(workers, zone), workers))
    if kind in {"kill", "stop"} and observation.record.planned_rollback and observation.record.rolled_back_at:
        verdicts.append(_recovery_time(row, label, passive))
    if kind == "hang":
        verdicts.append(_timeout_cost(observation, label, [(passive.read_setting, passive.read_timeout)]))
    if kind == "blackhole":
        # A request on a connection opened before the fault waits for its answer, not for a
        # connection: the stopped instance's kernel still holds the connection open.
        timeouts = [(passive.connect_setting, passive.connect_timeout)]
        if passive.reuses_connections:
            timeouts.append((passive.read_setting, passive.read_timeout))
        verdicts.append(_timeout_cost(observation, label, timeouts))
    if kind == "fail":
        verdicts.append(_failures_reach_clients_as_configured(row, observation, label, passive))
    if kind == "unhealthy":
        verdicts.append(_passive_checks_ignore_health(row, label))
    if kind in {"kill", "stop"} and algorithm == "ip_hash":
        verdicts.append(_ip_hash_remaps_only_the_dead_instances_clients(observation, label))
    if kind == "slow" and algorithm == "least_conn":
        if counts_together(workers, zone):
            verdicts.append(_least_conn_avoids_slow(observation, label))
        else:
            verdicts.append(
                not_applicable(
                    f"{label}: least_conn sends less to the slow instance",
                    f"{workers} workers without a shared zone each count only their own connections",
                )
            )
    return verdicts


def no_lost_get(row: FailoverRow, label: str, why: str) -> Verdict:
    """GET requests lose nothing across the fault; ``why`` says what in the config makes it so (or not)."""
    return Verdict(
        f"{label}: GET requests lose nothing",
        row.client_errors == 0,
        f"{row.client_errors} client errors {row.errors_by_status}; {row.retried_elsewhere} requests were "
        f"retried on another instance (expected 0 errors; {why})",
        {"client_errors": row.client_errors, "by_status": row.errors_by_status},
        {"client_errors": 0},
    )


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


def _recovery_time(row: FailoverRow, label: str, passive: PassiveChecks) -> Verdict:
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
    return Verdict(
        check,
        recovery is not None and low - LOG_TIME_TOLERANCE_S <= recovery <= high,
        f"first success {recovery} s after the last failure, {row.time_to_recover_s} s after the rollback "
        f"(expected {low:g} to {high:g} s after the last failure: {why})",
        observed,
        {"recovery_after_last_failure_s": [low, high]},
    )


def _timeout_cost(observation: FaultObservation, label: str, timeouts: list[tuple[str, float]]) -> Verdict:
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


def _least_conn_avoids_slow(observation: FaultObservation, label: str) -> Verdict:
    check = f"{label}: least_conn sends less to the slow instance"
    served = observation.clients[observation.clients["instance"] != ""]
    instances = max(served["instance"].nunique(), 1)
    share = float((served["instance"] == observation.record.instance).mean()) if not served.empty else 0.0
    even = 1.0 / instances
    return Verdict(
        check,
        not served.empty and share <= even / 2,
        f"{observation.record.instance} served {share:.1%} of requests while slow "
        f"(expected at most half the even share {even:.1%})",
        {"share": share},
        {"share_at_most": even / 2},
    )


def _ip_hash_remaps_only_the_dead_instances_clients(observation: FaultObservation, label: str) -> Verdict:
    """Clients of the dead instance move while it is out and come back after; no other client moves."""
    check = f"{label}: ip_hash moves only the dead instance's clients, and they come back"
    record = observation.record
    served = observation.all_clients[observation.all_clients["instance"] != ""]
    start = record.injected_at or 0.0
    before = served[served["time"] < start].groupby("client")["instance"].agg(lambda s: s.mode().iloc[0])
    during = served[(served["time"] > start) & (served["time"] < observation.rollback)]
    after = served[served["time"] > observation.effect_end + 0.5]
    own = set(before[before == record.instance].index)
    others = set(before.index) - own
    moved_others = sorted(
        str(client)
        for client, group in during.groupby("client")
        if client in others and set(group["instance"]) - {before[client]}
    )
    stayed_own = [c for c, g in during.groupby("client") if c in own and record.instance in set(g["instance"])]
    back_after = {c for c, g in after.groupby("client") if c in own and set(g["instance"]) == {record.instance}}
    observed = {
        "clients": len(before),
        "clients_of_dead_instance": len(own),
        "remapped_share": round(len(own) / max(len(before), 1), 3),
        "other_clients_moved": moved_others,
        "came_back": len(back_after),
    }
    came_back_expected = observation.effect_end < (served["time"].max() if not served.empty else 0.0) - 0.5
    passed = bool(own) and not moved_others and not stayed_own and (not came_back_expected or back_after == own)
    summary = (
        f"{len(own)} of {len(before)} clients were on {record.instance} ({observed['remapped_share']:.0%} remapped); "
        f"other clients moved: {moved_others or 'none'}; "
        f"came back after recovery: {len(back_after)} of {len(own)}"
        + ("" if came_back_expected else " (the run ended before the instance was back)")
    )
    return Verdict(check, passed, summary, observed, {"other_clients_moved": [], "came_back": len(own)})


def _post_in_flight_fails(row: FailoverRow, observation: FaultObservation, label: str) -> Verdict:
    """POSTs on the instance when it died fail: nginx does not resend a non-idempotent request.

    A POST whose connection was refused had sent nothing and is retried, so only the POSTs
    that were on the instance at the fault may fail, and at least one does when requests
    are long enough to be in flight.
    """
    check = f"{label}: only POSTs in flight at the fault fail"
    # The process died somewhere between the start of the injection and its return.
    start = observation.record.injected_at or 0.0
    died_by = observation.record.inject_returned_at or start
    attempts = observation.attempts
    in_flight = int(((attempts["start"] <= died_by) & (attempts["end"] >= start)).sum())
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status, "in_flight_at_fault": in_flight}
    # A proxy answers 502 or 504 for them; a client-side balancer's caller sees the error itself (0).
    passed = 0 < row.client_errors <= in_flight and set(row.errors_by_status) <= {"0", "502", "504"}
    return Verdict(
        check,
        passed,
        f"{row.client_errors} POSTs failed {row.errors_by_status}; {in_flight} were on {row.instance} at the fault "
        f"(expected 1 to {in_flight}); {row.retried_elsewhere} refused attempts were retried elsewhere",
        observed,
        {"client_errors": [1, in_flight]},
    )
