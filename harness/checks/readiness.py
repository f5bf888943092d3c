"""kube-proxy under faults: an endpoint leaves and rejoins as its readiness probe says.

The numbers come from the endpoints' own record (when the probes took an instance out of
the Service's endpoints and put it back) and from the clients. kube-proxy never retries a
request: until the probes remove a dead endpoint, connections to it fail, which the
verdict reports next to the time it took.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.checks.fault_rows import FailoverRow, clients_view, did_not_run, fault_label, finished_at, not_injected_row
from harness.checks.health_models import Readiness
from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import FAILS_HEALTH, HEALTHY_AGAIN, FaultRecord, fault_kind

_SLACK_S = 0.5  # scheduling on a busy 2-core machine


def read_endpoint_changes(path: Path) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["time", "instance", "ready"])


def _first(changes: pd.DataFrame, instance: str, ready: bool, after: float, before: float) -> float | None:
    found = changes[
        (changes["instance"] == instance) & (changes["ready"] == ready) & (changes["time"] > after)
        & (changes["time"] < before)
    ]  # fmt: skip
    return float(found["time"].min()) if not found.empty else None


def readiness_failover(
    records: list[FaultRecord],
    frame: pd.DataFrame,
    changes: pd.DataFrame,
    steady: pd.DataFrame,
    load_end: float,
    readiness: Readiness,
) -> tuple[list[Verdict], list[FailoverRow]]:
    verdicts: list[Verdict] = []
    rows: list[FailoverRow] = []
    for record in records:
        if record.injected_at is None:
            row = not_injected_row(record)
            rows.append(row)
            verdicts.append(did_not_run(row))
            continue
        start = record.injected_at
        removed = _first(changes, record.instance, False, start, load_end)
        rejoined = _first(changes, record.instance, True, record.rolled_back_at or load_end, load_end + 1)
        effect_end = rejoined or record.rolled_back_at or load_end
        window = frame[(finished_at(frame) >= start) & (frame["time"] <= effect_end)]
        on_instance = window[window["instance"] == record.instance]
        row = FailoverRow(
            **clients_view(record, window, steady),
            attempts_on_instance=len(on_instance),
            failed_attempts=0,
            retried_elsewhere=0,  # kube-proxy does not retry
            failures_before_eject=0,
            attempts_while_out=None,
            time_to_eject_s=round(removed - start, 3) if removed is not None else None,
            time_to_recover_s=(
                round(rejoined - record.rolled_back_at, 3) if rejoined is not None and record.rolled_back_at else None
            ),
            recovery_after_last_failure_s=None,
            duplicated_executions=0,
        )
        rows.append(row)
        if row.error or row.skipped:
            verdicts.append(did_not_run(row))
            continue
        label = fault_label(row)
        lasted = (record.rolled_back_at or load_end) - start
        if fault_kind(record.kind).has(FAILS_HEALTH):
            if removed is None and lasted < readiness.removal_within_s:
                verdicts.append(
                    not_applicable(
                        f"{label}: the readiness probe removes it from the endpoints in time",
                        f"the fault lasted {lasted:.1f} s, less than the probe's {readiness.removal_within_s:g} s "
                        f"(periodSeconds x failureThreshold + timeoutSeconds): no removal was due",
                    )
                )
                continue
            verdicts.append(_removed_in_time(row, label, readiness))
        if fault_kind(record.kind).has(HEALTHY_AGAIN) and record.planned_rollback and record.rolled_back_at:
            verdicts.append(_rejoined_in_time(row, label, readiness))
    return verdicts, rows


def _removed_in_time(row: FailoverRow, label: str, readiness: Readiness) -> Verdict:
    limit = readiness.removal_within_s + _SLACK_S
    check = f"{label}: the readiness probe removes it from the endpoints in time"
    observed = {"time_to_remove_s": row.time_to_eject_s, "client_errors": row.client_errors}
    expected = {"time_to_remove_s": [0.0, limit]}
    if row.time_to_eject_s is None:
        return Verdict(check, False, f"{row.instance} stayed an endpoint", observed, expected)
    return Verdict(
        check,
        row.time_to_eject_s <= limit,
        f"out of the endpoints {row.time_to_eject_s} s after the fault (expected at most {limit:g} s: "
        f"periodSeconds={readiness.period_s:g} x failureThreshold={readiness.failure_threshold} + "
        f"timeoutSeconds={readiness.timeout_s:g}); meanwhile {row.client_errors} client errors, "
        "as kube-proxy does not retry",
        observed,
        expected,
    )


def _rejoined_in_time(row: FailoverRow, label: str, readiness: Readiness) -> Verdict:
    limit = readiness.period_s * readiness.success_threshold + readiness.timeout_s + _SLACK_S
    check = f"{label}: back in the endpoints after successThreshold probes"
    observed = {"time_to_recover_s": row.time_to_recover_s}
    expected = {"time_to_recover_s": [0.0, limit]}
    if row.time_to_recover_s is None:
        return Verdict(
            check, False, f"{row.instance} did not rejoin the endpoints after the rollback", observed, expected
        )
    return Verdict(
        check,
        row.time_to_recover_s <= limit,
        f"back {row.time_to_recover_s} s after the rollback (expected at most {limit:g} s: "
        f"periodSeconds={readiness.period_s:g} x successThreshold={readiness.success_threshold} + timeout)",
        observed,
        expected,
    )
