"""nginx's own record of each request, from the run's access log, as a DataFrame.

One row per client request. When nginx tried several peers (a retry after a refused
connection or a timeout), ``$upstream_addr`` and ``$upstream_status`` list them in order,
separated by ", "; ``attempts`` keeps them as lists of equal length.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.balancers.nginx.render import ACCESS_LOG_FIELDS

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


CLIENT_CLOSED = 499


def is_failure(upstream_status: str) -> bool:
    """An attempt nginx may count against the peer: no answer ("-": refused, reset, timed
    out) or a 5xx. A 3xx or 4xx answer is the application's, never a peer failure."""
    return upstream_status == "-" or upstream_status.startswith("5")


def attempts(log: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt on a peer.

    Columns: ``start`` and ``end`` of the attempt and ``msec`` (when its request was
    logged), seconds since the epoch; ``address``, ``upstream_status`` ("-" when nginx gave
    up on it or the client left), ``failed``, ``try`` (0-based) of ``tries``, ``pid`` of
    the worker, ``request_status``. An attempt begins when the request began
    (``msec - request_time``) plus the time spent on the attempts before it. Requests the
    client abandoned (499, at the end of a load) are left out: nginx gave up on them, not
    the peer.
    """
    rows = []
    for line in log[log["status"] != CLIENT_CLOSED].to_dict("records"):
        addresses: list[str] = line["upstream_addrs"]
        statuses = list(line["upstream_statuses"]) + ["-"] * (len(addresses) - len(line["upstream_statuses"]))
        spent = [_seconds(value) or 0.0 for value in _split(str(line["upstream_response_time"]))]
        request_time = line["request_time"]
        begun = float(line["msec"]) - (float(request_time) if pd.notna(request_time) else 0.0)
        for index, address in enumerate(addresses):
            rows.append(
                {
                    "start": begun + sum(spent[:index]),
                    "end": begun + sum(spent[: index + 1]) if index < len(spent) else float(line["msec"]),
                    "msec": line["msec"],
                    "address": address,
                    "upstream_status": statuses[index],
                    "failed": is_failure(statuses[index]),
                    "try": index,
                    "tries": len(addresses),
                    "pid": line["pid"],
                    "request_status": line["status"],
                }
            )
    columns = ["start", "end", "msec", "address", "upstream_status", "failed", "try", "tries", "pid", "request_status"]
    return pd.DataFrame(rows, columns=columns)
