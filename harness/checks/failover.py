"""What a fault cost, from the balancer's log and the clients' records joined, and the checks on it.

Expectations come from the config under test (max_fails, fail_timeout, proxy_next_upstream,
proxy_read_timeout, workers, zone), never from constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from harness.balancers.nginx.access_log import attempts as attempts_of
from harness.balancers.nginx.config import PassiveChecks
from harness.checks.verdict import Verdict, not_applicable
from harness.scenarios.timeline import FaultRecord

# Failed attempts closer together than this belong to one burst: nginx's own probes of a
# disabled peer come at least fail_timeout apart.
_BURST_GAP_S = 0.5
# nginx rounds fail_timeout to whole seconds when it re-admits a peer (measured: fail_timeout
# to fail_timeout + 1 s); the extra slack covers timer and log-write granularity.
_RECOVERY_SLACK_S = 1.25
_OK = {"200", "201", "202", "204"}


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultObservation:
    """The data one fault's numbers are computed from."""

    record: FaultRecord
    window_end: float  # rollback, or the end of the load
    attempts: pd.DataFrame  # attempts on the faulty instance from the fault on
    clients: pd.DataFrame  # client requests open between the fault and the instance serving again
    log: pd.DataFrame  # balancer log lines that touched the instance from the fault on
    effect_end: float  # when the instance served again (or the end of the load)
    all_clients: pd.DataFrame  # every client request of the run


def observe(record: FaultRecord, clients: pd.DataFrame, log: pd.DataFrame, load_end: float) -> FaultObservation:
    start = record.injected_at or 0.0
    end = record.rolled_back_at or load_end
    every_attempt = attempts_of(log)
    on_instance = every_attempt[(every_attempt["address"] == record.address) & (every_attempt["msec"] >= start)]
    back = on_instance[(on_instance["msec"] > end) & on_instance["upstream_status"].isin(_OK)]
    # The fault's effects last until the instance serves again, which with passive checks
    # can be fail_timeout after the rollback; an instance that never came back was out
    # until the end of the load.
    served_again = float(back["msec"].min()) if not back.empty else load_end
    # A change of the whole cluster (a scale, a reload) lasts its reload and a second after.
    effect_end = served_again if record.address else end + 1.0
    # A request counts for the fault when it was still open at the fault: those already on
    # their way to the instance when it died are the first to suffer.
    finished = clients["time"] + clients["latency_ms"] / 1000.0
    window_clients = clients[(finished >= start) & (clients["time"] <= max(end, effect_end))]
    touched = log[(log["msec"] >= start) & log["upstream_addrs"].map(lambda addresses: record.address in addresses)]
    return FaultObservation(
        record, end, on_instance.sort_values("msec"), window_clients, touched, max(end, effect_end), clients
    )


def _failed(attempts: pd.DataFrame) -> pd.DataFrame:
    return attempts[~attempts["upstream_status"].isin(_OK)]


@dataclass(frozen=True)
class Ejection:
    """When nginx took the instance out, per counting scope (one shared count, or each worker's)."""

    at: float | None  # when the last scope reached max_fails; None if one never did
    failures: int  # failed attempts up to then, in-flight ones included
    attempts_while_out: int  # attempts that began while their scope had it out (expected 0)


def ejection(attempts: pd.DataFrame, max_fails: int, fail_timeout: float, shared: bool) -> Ejection:
    """Finds, per scope, the moment of the max_fails-th failure and counts attempts begun after it.

    Requests already on their way when the instance died fail too and count towards
    max_fails, so more than max_fails failures is normal under concurrent load; what nginx
    promises is that no attempt *begins* on the instance for fail_timeout once it is out.
    """
    if max_fails < 1 or attempts.empty:
        return Ejection(None, len(_failed(attempts)), 0)
    scopes = [attempts] if shared else [group for _, group in attempts.groupby("pid")]
    moments: list[float] = []
    failures = 0
    while_out = 0
    for scope in scopes:
        failed = _failed(scope).sort_values("msec")
        if len(failed) < max_fails:
            continue
        out_at = float(failed["msec"].iloc[max_fails - 1])
        moments.append(out_at)
        failures += int((failed["msec"] <= out_at).sum())
        # The slack leaves out nginx's own probe once fail_timeout has run out.
        begun = scope[(scope["start"] > out_at) & (scope["start"] < out_at + fail_timeout - _BURST_GAP_S)]
        while_out += len(begun)
    if not moments:
        return Ejection(None, len(_failed(attempts)), 0)
    return Ejection(max(moments), failures, while_out)


def _percentile(values: pd.Series, q: float) -> float | None:
    return None if values.empty else round(float(values.quantile(q)), 1)


def failover_row(
    observation: FaultObservation, steady: pd.DataFrame, passive: PassiveChecks, shared: bool
) -> FailoverRow:
    """The fault's numbers; ``shared`` says whether all workers count failures together."""
    record = observation.record
    if record.injected_at is None:
        return FailoverRow(
            record.index, record.description, record.instance, None, 0, {}, 0, 0, 0, 0, None,
            None, None, None, 0, None, None, None, None, skipped=record.skipped or "not injected",
        )  # fmt: skip
    start, end = record.injected_at, observation.window_end
    in_window = observation.attempts[observation.attempts["msec"] <= end]
    failed = _failed(in_window)
    out = ejection(observation.attempts, passive.max_fails, passive.fail_timeout, shared)
    successes_after = observation.attempts[
        (observation.attempts["msec"] > end) & observation.attempts["upstream_status"].isin(_OK)
    ]
    recovered_at = float(successes_after["msec"].iloc[0]) if not successes_after.empty else None
    all_failed = _failed(observation.attempts)
    last_failure = None
    if recovered_at is not None:
        before = all_failed[all_failed["msec"] < recovered_at]
        last_failure = float(before["msec"].iloc[-1]) if not before.empty else None
    errors = observation.clients[(observation.clients["status"] < 200) | (observation.clients["status"] >= 300)]
    retried = in_window[in_window["try"] < in_window["tries"] - 1]
    duplicated = observation.log[
        observation.log["upstream_statuses"].map(lambda statuses: len(statuses) > 1 and "504" in statuses[:-1])
    ]
    return FailoverRow(
        step=record.index,
        fault=record.description,
        instance=record.instance,
        at_s=round(record.planned_at, 3),
        client_errors=len(errors),
        errors_by_status={str(k): int(v) for k, v in errors["status"].value_counts().items()},
        attempts_on_instance=len(in_window),
        failed_attempts=len(failed),
        retried_elsewhere=len(retried),
        failures_before_eject=out.failures,
        attempts_while_out=out.attempts_while_out if out.at is not None else None,
        time_to_eject_s=round(out.at - start, 3) if out.at is not None else None,
        time_to_recover_s=round(recovered_at - end, 3) if recovered_at is not None and record.rolled_back_at else None,
        recovery_after_last_failure_s=(
            round(recovered_at - last_failure, 3) if recovered_at is not None and last_failure is not None else None
        ),
        duplicated_executions=len(duplicated),
        p50_window_ms=_percentile(observation.clients["latency_ms"], 0.5),
        p99_window_ms=_percentile(observation.clients["latency_ms"], 0.99),
        p50_steady_ms=_percentile(steady["latency_ms"], 0.5),
        p99_steady_ms=_percentile(steady["latency_ms"], 0.99),
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
    kind = observation.record.kind
    label = f"fault {row.step} ({row.fault} {row.instance})"
    if row.skipped:
        return [not_applicable(f"{label}", f"skipped: {row.skipped}")]
    verdicts: list[Verdict] = []
    if kind in {"scale", "reload"}:
        verdicts.append(_no_lost_get(row, label, passive, "error"))
    if kind in {"kill", "stop", "restart"} and method == "POST":
        verdicts.append(_post_in_flight_fails(row, observation, label))
    elif kind in {"kill", "stop", "restart"}:
        verdicts.append(_no_lost_get(row, label, passive, "error"))
    if kind in {"kill", "stop", "hang", "blackhole"}:
        verdicts.append(_ejected_after_max_fails(row, label, passive, workers, zone))
    if kind in {"kill", "stop"} and observation.record.rolled_back_at is not None:
        verdicts.append(_recovery_time(row, label, passive, observation))
    if kind == "hang":
        verdicts.append(_no_lost_get(row, label, passive, "timeout"))
        verdicts.append(_timeout_cost(observation, label, passive.read_timeout, "proxy_read_timeout"))
    if kind == "blackhole":
        verdicts.append(_no_lost_get(row, label, passive, "timeout"))
        verdicts.append(_timeout_cost(observation, label, passive.connect_timeout, "proxy_connect_timeout"))
    if kind == "fail":
        verdicts.append(_failures_reach_clients_as_configured(row, observation, label, passive))
    if kind == "unhealthy":
        verdicts.append(_passive_checks_ignore_health(row, label))
    if kind in {"kill", "stop"} and algorithm == "ip_hash":
        verdicts.append(_ip_hash_remaps_only_the_dead_instances_clients(observation, label))
    if kind == "slow" and algorithm == "least_conn":
        verdicts.append(_least_conn_avoids_slow(observation, label))
    return verdicts


def _no_lost_get(row: FailoverRow, label: str, passive: PassiveChecks, condition: str) -> Verdict:
    check = f"{label}: GET requests lose nothing"
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status}
    if not passive.retries(condition):
        setting = " ".join(passive.next_upstream)
        return Verdict(
            check,
            row.client_errors == 0,
            f"{row.client_errors} client errors {row.errors_by_status} with proxy_next_upstream {setting}, "
            f"which does not retry on {condition} (expected 0 errors only when it does)",
            observed,
            {"client_errors": 0},
        )
    return Verdict(
        check,
        row.client_errors == 0,
        f"{row.client_errors} client errors {row.errors_by_status}; {row.retried_elsewhere} attempts were "
        f"retried on another instance (expected 0 errors: proxy_next_upstream retries on {condition})",
        observed,
        {"client_errors": 0},
    )


def _ejected_after_max_fails(row: FailoverRow, label: str, passive: PassiveChecks, workers: int, zone: bool) -> Verdict:
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
    shared = zone or workers == 1
    scope = "one shared count" if shared else f"{workers} workers counting separately (no zone)"
    if row.attempts_while_out is None:
        return Verdict(
            check,
            False,
            f"{row.instance} was never taken out: {row.failed_attempts} failed attempts, fewer than "
            f"max_fails={passive.max_fails} in a counting scope ({scope})",
            observed,
            {"failures_before_eject": f"at least {passive.max_fails}"},
        )
    return Verdict(
        check,
        row.attempts_while_out == 0 and row.failures_before_eject >= passive.max_fails,
        f"out after {row.failures_before_eject} failures ({row.time_to_eject_s} s after the fault; "
        f"max_fails={passive.max_fails}, {scope}, requests already in flight count too); "
        f"{row.attempts_while_out} attempts began on it while out "
        f"(expected 0 for fail_timeout={passive.fail_timeout:g}s)",
        observed,
        {"attempts_while_out": 0, "failures_before_eject": f"at least {passive.max_fails}"},
    )


def _recovery_time(row: FailoverRow, label: str, passive: PassiveChecks, observation: FaultObservation) -> Verdict:
    check = f"{label}: back in rotation fail_timeout after the last failure"
    expected = [passive.fail_timeout, passive.fail_timeout + _RECOVERY_SLACK_S]
    recovery = row.recovery_after_last_failure_s
    observed = {"recovery_after_last_failure_s": recovery, "time_to_recover_s": row.time_to_recover_s}
    if recovery is None:
        return Verdict(
            check, False, f"{row.instance} served no request after the rollback", observed, {"window_s": expected}
        )
    rollback = observation.record.rolled_back_at or 0.0
    recovered = rollback + (row.time_to_recover_s or 0.0)
    if passive.max_fails == 0 or recovered - recovery > rollback:
        # Nothing to wait for: no passive checks, or the last failure came after the rollback.
        expected = [0.0, _RECOVERY_SLACK_S]
        passed = (row.time_to_recover_s or 0.0) <= _RECOVERY_SLACK_S
        return Verdict(
            check,
            passed,
            f"first success {row.time_to_recover_s} s after the rollback (expected at most {_RECOVERY_SLACK_S:g} s: "
            f"{'max_fails=0, nothing to wait for' if passive.max_fails == 0 else 'it failed after the rollback'})",
            observed,
            {"after_rollback_s": expected},
        )
    passed = expected[0] - 0.05 <= recovery <= expected[1]
    return Verdict(
        check,
        passed,
        f"first success {recovery:.2f} s after the last failure, {row.time_to_recover_s} s after the rollback "
        f"(expected {expected[0]:g} to {expected[1]:g} s after the last failure: "
        f"fail_timeout={passive.fail_timeout:g}s)",
        observed,
        {"window_s": expected},
    )


def _timeout_cost(observation: FaultObservation, label: str, timeout: float, setting: str) -> Verdict:
    check = f"{label}: each affected request costs {setting}"
    address = observation.record.address
    timed_out = observation.log[
        observation.log.apply(
            lambda line: any(
                a == address and s in {"504", "-"}
                for a, s in zip(line["upstream_addrs"], line["upstream_statuses"], strict=False)
            ),
            axis=1,
        )
    ]
    times = timed_out["request_time"].dropna()
    low, high = timeout, timeout + 1.0
    observed = {
        "affected_requests": len(times),
        "median_request_time_s": None if times.empty else float(times.median()),
    }
    if times.empty:
        return Verdict(
            check, False, "no request waited on the hung instance", observed, {"request_time_s": [low, high]}
        )
    median = float(times.median())
    return Verdict(
        check,
        low - 0.05 <= median <= high,
        f"{len(times)} requests waited on {observation.record.instance}; median {median:.3f} s "
        f"(expected {low:g} to {high:g} s: {setting}={timeout:g}s)",
        observed,
        {"request_time_s": [low, high]},
    )


def _failures_reach_clients_as_configured(
    row: FailoverRow, observation: FaultObservation, label: str, passive: PassiveChecks
) -> Verdict:
    check = f"{label}: failing answers reach clients as proxy_next_upstream says"
    retried = passive.retries("http_503") or passive.retries("http_500")
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status}
    if retried:
        return Verdict(
            check, row.client_errors == 0,
            f"{row.client_errors} client errors (expected 0: proxy_next_upstream {' '.join(passive.next_upstream)})",
            observed, {"client_errors": 0},
        )  # fmt: skip
    return Verdict(
        check,
        row.client_errors > 0,
        f"{row.client_errors} client errors {row.errors_by_status}: nginx passes the instance's own error "
        f"answers to clients (proxy_next_upstream {' '.join(passive.next_upstream)} does not retry them)",
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
    during = served[(served["time"] > start) & (served["time"] < observation.window_end)]
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
    in flight at the fault may fail, and at least one does when requests are long enough
    to be in flight.
    """
    check = f"{label}: only POSTs in flight at the fault fail"
    start = observation.record.injected_at or 0.0
    clients = observation.clients
    finished = clients["time"] + clients["latency_ms"] / 1000.0
    in_flight = int(((clients["time"] <= start) & (finished >= start)).sum())
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status, "in_flight_at_fault": in_flight}
    passed = 0 < row.client_errors <= in_flight and set(row.errors_by_status) <= {"502", "504"}
    return Verdict(
        check,
        passed,
        f"{row.client_errors} POSTs failed {row.errors_by_status}, of {in_flight} requests open at the fault "
        f"(expected 1 to {in_flight}: those on {row.instance} when it went away; "
        f"{row.retried_elsewhere} refused attempts were retried elsewhere)",
        observed,
        {"client_errors": [1, in_flight]},
    )
