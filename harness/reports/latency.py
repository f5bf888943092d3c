"""Latency percentiles from an HDR histogram: every value kept to three significant digits.

Quantiles over raw floats depend on interpolation; an HDR histogram states its precision
(values recorded in microseconds from 1 µs to 10 minutes, 3 significant digits, so a
reported percentile is within 0.1 % of a value that was measured).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS = 1, 600_000_000, 3
PERCENTILES = (50.0, 95.0, 99.0, 99.9)
PRECISION = "HDR histogram, 3 significant digits (within 0.1 %), 1 µs to 600 s"


def histogram(latencies_ms: Iterable[float]) -> HdrHistogram:
    recorded = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for value in latencies_ms:
        recorded.record_value(min(max(round(value * 1000), LOWEST_US), HIGHEST_US))
    return recorded


def percentiles(latencies_ms: Iterable[float], which: Sequence[float] = PERCENTILES) -> dict[str, float | None]:
    """``{"p50": ms, ...}``; None for each when there are no values."""
    recorded = histogram(latencies_ms)
    if recorded.get_total_count() == 0:
        return {_name(p): None for p in which}
    return {_name(p): round(recorded.get_value_at_percentile(p) / 1000, 3) for p in which}


def _name(percentile: float) -> str:
    return f"p{percentile:g}".replace(".", "_")


def over_time(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """Per window of ``window_s`` seconds from the first request: count, p50, p95, p99 (ms)."""
    columns = ["t", "count", "p50", "p95", "p99"]
    if requests.empty:
        return pd.DataFrame(columns=columns)
    start = float(requests["time"].min())
    windows = ((requests["time"] - start) // window_s).astype(int)
    rows = []
    for window, group in requests.groupby(windows):
        values = percentiles(group["latency_ms"], (50.0, 95.0, 99.0))
        rows.append({"t": int(window) * window_s, "count": len(group), **values})
    return pd.DataFrame(rows, columns=columns)
