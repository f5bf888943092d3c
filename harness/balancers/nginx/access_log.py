"""nginx's own record of each request, from the run's access log, as a DataFrame.

One row per client request. When nginx tried several peers (a retry after a refused
connection or a timeout), ``$upstream_addr`` and ``$upstream_status`` list them in order,
separated by ", "; ``attempts`` keeps them as lists of equal length.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.balancers.nginx.config import ACCESS_LOG_FIELDS

COLUMNS = [name for name, _ in ACCESS_LOG_FIELDS]


def _split(value: str) -> list[str]:
    # Groups from internal redirects are separated by " : "; both separators mean "then".
    if value in {"", "-"}:
        return []
    return [part.strip() for part in value.replace(" : ", ", ").split(",") if part.strip()]


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def read_access_log(path: Path) -> pd.DataFrame:
    """Parses the harness's access log format; an absent or empty log gives an empty frame.

    Columns: the log fields (``msec`` as float seconds since the epoch, ``status`` int),
    plus ``upstream_addrs`` and ``upstream_statuses`` (lists, one entry per attempt),
    ``attempts`` (int) and ``retried`` (bool: more than one peer was tried).
    """
    rows: list[dict[str, object]] = []
    if path.exists():
        with path.open() as log:
            for line in log:
                values = line.rstrip("\n").split("\t")
                if len(values) != len(COLUMNS):
                    continue  # a line cut short by a crash; the rest of the log still counts
                rows.append(dict(zip(COLUMNS, values, strict=True)))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["msec"] = frame["msec"].astype(float)
    frame["status"] = frame["status"].astype(int)
    frame["request_time"] = frame["request_time"].map(_seconds)
    frame["upstream_addrs"] = frame["upstream_addr"].map(_split)
    frame["upstream_statuses"] = frame["upstream_status"].map(_split)
    frame["attempts"] = frame["upstream_addrs"].map(len)
    frame["retried"] = frame["attempts"] > 1
    return frame


def attempts(log: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt on a peer: ``msec``, ``address``, ``upstream_status``, ``try`` (0-based) of ``tries``.

    An attempt with no status (nginx gave up on it, or the client left) has status "-".
    """
    rows = []
    for msec, addresses, statuses, request_status in zip(
        log["msec"], log["upstream_addrs"], log["upstream_statuses"], log["status"], strict=True
    ):
        padded = list(statuses) + ["-"] * (len(addresses) - len(statuses))
        for index, address in enumerate(addresses):
            rows.append(
                {
                    "msec": msec,
                    "address": address,
                    "upstream_status": padded[index],
                    "try": index,
                    "tries": len(addresses),
                    "request_status": request_status,
                }
            )
    return pd.DataFrame(rows, columns=["msec", "address", "upstream_status", "try", "tries", "request_status"])
