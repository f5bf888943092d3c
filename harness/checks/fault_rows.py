"""One fault's row of numbers and what it is computed from: the clients' records and the
balancer's attempts in the fault's window, joined. The same for every balancer; each balancer's
health-check model (passive, active, readiness) fills the rest of the row and judges it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import FaultRecord
from harness.results.statuses import answered

# Access logs keep milliseconds, and an attempt's start is stamped just before its pick:
# a recovery measured from them may read up to this much early.
LOG_TIME_TOLERANCE_S = 0.05


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
    # Every attempt of the run, on any instance: an instance comes back only on a pick, and
    # sessions make picks seldom (read only when a recovery comes late).
    every_attempt: pd.DataFrame


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
    return FaultObservation(record, rollback, effect_end, on_instance, window, clients, attempts)


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
    errors = window[~answered(window["status"])]
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


def fault_label(row: FailoverRow) -> str:
    return f"fault {row.step} ({row.fault} {row.instance})"


def did_not_run(row: FailoverRow) -> Verdict:
    """The verdict of a fault that failed to run (FAIL) or was skipped (N/A), with the reason."""
    if row.error:
        return Verdict(fault_label(row), False, f"the fault did not run as planned: {row.error}")
    return not_applicable(fault_label(row), f"skipped: {row.skipped}")


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


def counts_together(workers: int, zone: bool) -> bool:
    """Whether nginx's workers share one failure count and one connection count per peer:
    with a single worker, or with a shared memory zone on the upstream."""
    return zone or workers == 1
