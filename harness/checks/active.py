"""What a fault cost under HAProxy's active health checks, and the checks on it.

HAProxy's log names only the server that finally answered (and how often the request
was retried), so the balancer's view of a fault comes from its stats socket, sampled
during the run: when the checks marked the server DOWN and UP again. Expectations come
from the config under test (inter, fall, rise, option redispatch).
"""

from __future__ import annotations

import pandas as pd

from harness.checks.fault_rows import (
    FailoverRow,
    clients_view,
    did_not_run,
    fault_label,
    finished_at,
    no_lost_get,
    not_injected_row,
)
from harness.checks.health_models import ActiveChecks
from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import (
    CLUSTER_CHANGE,
    FAILS_HEALTH,
    HEALTH_ONLY,
    NO_ANSWER,
    NO_CONNECT,
    READ_TIMEOUT,
    RESTARTED,
    FaultRecord,
    fault_kind,
)

# The stats socket is sampled every 50 ms and checks run on HAProxy's own timer; the
# slack covers both.
_SLACK_S = 0.25
_SAMPLE_SLACK_S = 0.1  # two samples of the 50 ms state recorder


def active_failover_row(
    record: FaultRecord,
    clients: pd.DataFrame,
    log: pd.DataFrame,
    down_at: float | None,
    up_at: float | None,
    steady: pd.DataFrame,
    load_end: float,
) -> FailoverRow:
    """The fault's numbers: ``down_at``/``up_at`` are when HAProxy's checks marked the
    instance DOWN after the fault and UP after the rollback (None when they did not)."""
    if record.injected_at is None:
        return not_injected_row(record)
    start = record.injected_at
    rollback = record.rolled_back_at or load_end
    # The fault lasts until the checks mark the instance UP again; a change of the whole
    # cluster (a scale, a reload) lasts its reload and a second after.
    effect_end = max(rollback, up_at or load_end) if record.address else rollback + 1.0
    window = clients[(finished_at(clients) >= start) & (clients["time"] <= effect_end)]
    begun = log["msec"] - log["request_time"]
    in_window = log[(log["msec"] >= start) & (begun <= effect_end)]
    on_instance = in_window[in_window["upstream_addr"] == record.address]
    # Until the checks took it out, a retried request had first tried the failed instance.
    out_at = down_at or rollback
    before_out = in_window[(in_window["msec"] - in_window["request_time"]) <= out_at]
    reached = int((before_out["upstream_addr"] == record.address).sum() + before_out["redispatched"].sum())
    while_out = 0
    if down_at is not None:
        # The state is sampled: the server may have been UP up to one sample before it was seen.
        out_until = (up_at or load_end) - _SAMPLE_SLACK_S
        while_out = int(((begun > down_at) & (begun < out_until) & (log["upstream_addr"] == record.address)).sum())
    return FailoverRow(
        **clients_view(record, window, steady),
        attempts_on_instance=reached,
        failed_attempts=int((on_instance["status"] >= 500).sum()),
        retried_elsewhere=int(in_window["redispatched"].sum()),
        failures_before_eject=0,
        attempts_while_out=while_out if down_at is not None else None,
        time_to_eject_s=round(down_at - start, 3) if down_at is not None else None,
        time_to_recover_s=round(up_at - rollback, 3) if up_at is not None and record.rolled_back_at else None,
        recovery_after_last_failure_s=None,
        duplicated_executions=0,
    )


def active_fault_verdicts(
    row: FailoverRow, record: FaultRecord, checks: ActiveChecks, method: str = "GET"
) -> list[Verdict]:
    """The checks that apply to this fault's kind under active health checks."""
    label = fault_label(row)
    if row.error or row.skipped:
        return [did_not_run(row)]
    verdicts: list[Verdict] = []
    kind = fault_kind(record.kind)
    if kind.has(NO_CONNECT) or kind.has(CLUSTER_CHANGE):
        if method == "GET":
            verdicts.append(_no_lost_get(row, label, checks))
        else:
            verdicts.append(
                not_applicable(f"{label}: requests lose nothing", f"{method} load on HAProxy: not judged yet")
            )
    if kind.has(FAILS_HEALTH):
        if (kind.has(READ_TIMEOUT) or kind.has(HEALTH_ONLY)) and not checks.http:
            verdicts.append(
                not_applicable(
                    f"{label}: active checks mark it DOWN",
                    "the checks only connect (no `option httpchk`): a hung process or a failing health endpoint "
                    "still accepts connections, so they cannot see it",
                )
            )
        else:
            verdicts.append(_marked_down(row, label, checks, unanswered=kind.has(NO_ANSWER)))
    if kind.has(RESTARTED) and record.planned_rollback and record.rolled_back_at is not None:
        verdicts.append(_marked_up(row, label, checks))
    return verdicts


def _no_lost_get(row: FailoverRow, label: str, checks: ActiveChecks) -> Verdict:
    if checks.redispatch:
        return no_lost_get(row, label, "option redispatch moves a request whose server failed to another one")
    return no_lost_get(
        row, label, "without option redispatch a request whose server failed is retried on that same server"
    )


def _marked_down(row: FailoverRow, label: str, checks: ActiveChecks, unanswered: bool) -> Verdict:
    check = f"{label}: active checks mark it DOWN in time"
    limit = checks.detect_within(unanswered)
    how = (
        f"inter={checks.inter:g}s until the first check, then fall={checks.fall} checks that each wait "
        f"{checks.check_timeout or checks.inter:g}s for an answer, {checks.inter:g}s apart"
        if unanswered
        else f"fall={checks.fall} x inter={checks.inter:g}s + inter"
    )
    observed = {"time_to_down_s": row.time_to_eject_s, "requests_while_down": row.attempts_while_out}
    expected = {"time_to_down_s": [0.0, limit + _SLACK_S], "requests_while_down": 0}
    if not checks.enabled:
        return Verdict(check, False, "the servers have no `check`: HAProxy never tests them", observed, expected)
    if row.time_to_eject_s is None:
        return Verdict(check, False, f"{row.instance} was never marked DOWN", observed, expected)
    passed = row.time_to_eject_s <= limit + _SLACK_S and row.attempts_while_out == 0
    return Verdict(
        check,
        passed,
        f"DOWN {row.time_to_eject_s} s after the fault (expected at most {limit:g} s + {_SLACK_S:g} s: {how}); "
        f"{row.attempts_while_out} requests went to it while DOWN (expected 0)",
        observed,
        expected,
    )


def _marked_up(row: FailoverRow, label: str, checks: ActiveChecks) -> Verdict:
    check = f"{label}: active checks mark it UP within rise x inter + inter"
    limit = checks.recover_within
    observed = {"time_to_up_s": row.time_to_recover_s}
    expected = {"time_to_up_s": [0.0, limit + _SLACK_S]}
    if row.time_to_recover_s is None:
        return Verdict(check, False, f"{row.instance} was not marked UP after the rollback", observed, expected)
    return Verdict(
        check,
        row.time_to_recover_s <= limit + _SLACK_S,
        f"UP {row.time_to_recover_s} s after the rollback (expected at most {limit:g} s + {_SLACK_S:g} s: "
        f"rise={checks.rise} x inter={checks.inter:g}s + inter)",
        observed,
        expected,
    )
