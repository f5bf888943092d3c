"""``harness compare RUN_A RUN_B``: what changed between two runs, and whether it is a regression.

For every algorithm both runs hold: the verdicts (a check that passed and now fails), the
spread (each instance's share, in percentage points), the error rate, latency percentiles
(from HDR histograms), and for each fault of a scenario its client errors and its times
to eject and recover. A change is a regression when it is worse than the thresholds,
which allow for a noisy machine: a latency regression must be both a ratio and an
absolute step, so 1 ms against 2 ms is not one, and the tail (p95, p99) has wider limits
than the median.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import SpecError
from harness.reports import latency
from harness.reports.rundata import AlgorithmRunData, load_run
from harness.results.statuses import failed_status


@dataclass(frozen=True)
class Thresholds:
    share_points: float = 5.0  # percentage points of one instance's share
    latency_ratio: float = 1.5  # p50: B above A x ratio ...
    latency_ms: float = 2.0  # ... and above A + this many ms
    # p95 and p99 of short runs on a small shared machine move by 2x between identical runs
    # (measured: p95 8.0 -> 16.1 ms with one core busy elsewhere): only a larger jump counts.
    tail_ratio: float = 3.0
    tail_ms: float = 20.0
    error_rate_points: float = 0.1  # percentage points of requests that failed
    failover_ratio: float = 1.5  # eject / recover times: above A x ratio ...
    failover_s: float = 0.5  # ... and above A + this many seconds


@dataclass(frozen=True)
class Change:
    algorithm: str
    measure: str
    before: object
    after: object
    regression: bool
    why: str = ""


def _rate(data: AlgorithmRunData) -> float:
    requests = data.requests
    if requests.empty:
        return 0.0
    failed = failed_status(requests["status"])
    return float(failed.mean()) * 100


def _worse(before: float | None, after: float | None, ratio: float, step: float) -> bool:
    if before is None or after is None:
        return False
    return after > before * ratio and after > before + step


def _verdicts(a: AlgorithmRunData, b: AlgorithmRunData) -> list[Change]:
    before = {v["check"]: v["passed"] for v in a.summary.get("verdicts", [])}
    changes = []
    for verdict in b.summary.get("verdicts", []):
        was = before.get(verdict["check"])
        if was is True and verdict["passed"] is False:
            changes.append(Change(a.algorithm, f"verdict: {verdict['check']}", "PASS", "FAIL", True))
    return changes


def _spread(a: AlgorithmRunData, b: AlgorithmRunData, limit: float) -> list[Change]:
    shares_a = {row["instance"]: row["share"] * 100 for row in a.summary.get("instances", [])}
    shares_b = {row["instance"]: row["share"] * 100 for row in b.summary.get("instances", [])}
    changes = []
    for instance in sorted(set(shares_a) | set(shares_b)):
        before, after = shares_a.get(instance, 0.0), shares_b.get(instance, 0.0)
        moved = abs(after - before)
        changes.append(
            Change(
                a.algorithm,
                f"share of {instance} (%)",
                round(before, 1),
                round(after, 1),
                moved > limit,
                f"moved {moved:.1f} points (limit {limit:g})",
            )
        )
    return changes


def _latency(a: AlgorithmRunData, b: AlgorithmRunData, limits: Thresholds) -> list[Change]:
    before, after = latency.percentiles(a.requests["latency_ms"]), latency.percentiles(b.requests["latency_ms"])
    changes = []
    for name in ("p50", "p95", "p99"):
        ratio, step = (
            (limits.latency_ratio, limits.latency_ms) if name == "p50" else (limits.tail_ratio, limits.tail_ms)
        )
        worse = _worse(before[name], after[name], ratio, step)
        why = f"limit: above {ratio:g}x and {step:g} ms more"
        changes.append(Change(a.algorithm, f"latency {name} (ms)", before[name], after[name], worse, why))
    return changes


_FAILOVER: dict[str, Callable[[Thresholds], tuple[float, float]]] = {
    "time_to_eject_s": lambda t: (t.failover_ratio, t.failover_s),
    "time_to_recover_s": lambda t: (t.failover_ratio, t.failover_s),
}


def _failover(a: AlgorithmRunData, b: AlgorithmRunData, limits: Thresholds) -> list[Change]:
    if a.failover.empty or b.failover.empty:
        return []
    changes = []
    rows_b = {int(row["step"]): row for row in b.failover.to_dict("records")}
    for row in a.failover.to_dict("records"):
        other = rows_b.get(int(row["step"]))
        if other is None:
            continue
        label = f"fault {row['step']} ({row['fault']} {row['instance']})"
        errors_before, errors_after = int(row["client_errors"]), int(other["client_errors"])
        changes.append(
            Change(a.algorithm, f"{label}: client errors", errors_before, errors_after, errors_after > errors_before)
        )
        for column, limit in _FAILOVER.items():
            ratio, step = limit(limits)
            before = None if pd.isna(row[column]) else float(row[column])
            after = None if pd.isna(other[column]) else float(other[column])
            worse = _worse(before, after, ratio, step) or (before is not None and after is None)
            changes.append(Change(a.algorithm, f"{label}: {column}", before, after, worse))
    return changes


def _agreement(a: AlgorithmRunData, b: AlgorithmRunData) -> list[Change]:
    """The replay's share of picks as the model predicts: any fall is a regression (the models are exact)."""

    def share(data: AlgorithmRunData) -> float | None:
        # The replay's verdict, named as harness.checks.replay names it (a layer above this one).
        verdict = next((v for v in data.summary.get("verdicts", []) if v["check"].startswith("replay: ")), None)
        picks = (verdict or {}).get("observed", {}).get("picks")
        return round(100 * verdict["observed"]["as_predicted"] / picks, 2) if verdict and picks else None

    before, after = share(a), share(b)
    if before is None and after is None:
        return []
    fell = before is not None and after is not None and after < before
    return [Change(a.algorithm, "picks as the model predicts (%)", before, after, fell, "any fall")]


def compare_runs(run_a: Path, run_b: Path, limits: Thresholds | None = None) -> list[Change]:
    """Every measure of every algorithm both runs hold, A (before) against B (after)."""
    limits = limits or Thresholds()
    before = {data.algorithm: data for data in load_run(run_a)}
    after = {data.algorithm: data for data in load_run(run_b)}
    shared = [name for name in before if name in after]
    if not shared:
        raise SpecError(
            f"{run_a} ({', '.join(before)}) and {run_b} ({', '.join(after)}) have no algorithm in common to compare"
        )
    changes: list[Change] = []
    for name in shared:
        a, b = before[name], after[name]
        changes += _verdicts(a, b)
        changes += _agreement(a, b)
        changes += _spread(a, b, limits.share_points)
        rate_a, rate_b = _rate(a), _rate(b)
        changes.append(
            Change(
                name,
                "requests that failed (%)",
                round(rate_a, 3),
                round(rate_b, 3),
                rate_b > rate_a + limits.error_rate_points,
                f"limit: {limits.error_rate_points:g} points more",
            )
        )
        changes += _latency(a, b, limits)
        changes += _failover(a, b, limits)
    return changes
