"""What clients saw go wrong."""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import Verdict
from harness.results.statuses import answered


def no_client_errors(requests: pd.DataFrame, check: str = "clients saw no errors") -> Verdict:
    """Every request got a 2xx answer from an instance (or 101, a WebSocket's upgrade)."""
    failed = requests[~answered(requests["status"]) | (requests["error"] != "")]
    observed = {"requests": len(requests), "errors": len(failed)}
    if failed.empty:
        return Verdict(check, True, f"0 errors in {len(requests)} requests", observed, {"errors": 0})
    by_kind = failed.groupby(["status", "error"]).size().head(3).to_dict()
    return Verdict(
        check, False, f"{len(failed)} of {len(requests)} requests failed: {by_kind}", observed, {"errors": 0}
    )


def no_counted_errors(
    requests: int, failed: int, statuses: dict[str, int], socket_errors: int, check: str = "clients saw no errors"
) -> Verdict:
    """A load without per-request records (wrk): its counts of failed requests and socket errors are zero."""
    return Verdict(
        check,
        failed == 0,
        f"{failed} errors in {requests} requests (statuses {statuses}, {socket_errors} socket errors)",
        {"requests": requests, "errors": failed},
        {"errors": 0},
    )
