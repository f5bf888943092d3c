"""nginx's own record of each request, from the run's access log, as a DataFrame.

One row per client request. When nginx tried several peers (a retry after a refused
connection or a timeout), ``$upstream_addr`` and ``$upstream_status`` list them in order,
separated by ", "; ``attempts`` keeps them as lists of equal length.

Parsing is column-wise (pandas' C reader, string methods on whole columns): a log of a
long scenario holds hundreds of thousands of lines, and only the few retried requests take
a per-row path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from harness.balancers.nginx.render import ACCESS_LOG_FIELDS

COLUMNS = [name for name, _ in ACCESS_LOG_FIELDS]
CLIENT_CLOSED = 499


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


# Fields nginx always writes as numbers; the rest are read as text.
_NUMERIC = {"msec": pa.float64(), "status": pa.int64(), "request_time": pa.float64()}


def _raw(path: Path, columns: list[str] = COLUMNS) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        frame = pd.DataFrame({column: pd.Series(dtype=str) for column in columns})
        return frame.astype({name: kind.to_pandas_dtype() for name, kind in _NUMERIC.items() if name in columns})
    try:
        return _read(path, _NUMERIC, columns)
    except pa.ArrowInvalid:
        # A line mangled past its field count (a crash mid-write): read as text, and drop what is not a number.
        frame = _read(path, {}, columns)
        for column in [name for name in _NUMERIC if name in frame]:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame = frame.dropna(subset=[name for name in ("msec", "status") if name in frame])
        return frame.astype({"status": int}).reset_index(drop=True)


def _read(path: Path, numeric: dict[str, pa.DataType], columns: list[str]) -> pd.DataFrame:
    """Arrow's reader, without quoting (nginx escapes quotes as \\x22); a line cut short by a
    crash has fewer fields and is skipped, the rest of the log still counts. Only ``columns``
    are converted: the others are skipped over, not kept."""
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=COLUMNS),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=lambda _: "skip"),
        convert_options=pa_csv.ConvertOptions(
            column_types={column: numeric.get(column, pa.string()) for column in COLUMNS},
            strings_can_be_null=False, null_values=[], include_columns=columns,
        ),
    )  # fmt: skip
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _split_column(column: pd.Series) -> pd.Series:
    """``_split`` of every value; only values holding several entries take the per-value path."""
    values = column.to_numpy(dtype=object)
    lists: list[list[str]] = [[value] for value in values]
    for index in np.flatnonzero(((column == "-") | (column == "")).to_numpy(dtype=bool)):
        lists[index] = []
    several = (column.str.contains(",", regex=False) | column.str.contains(" : ", regex=False)).to_numpy(dtype=bool)
    for index in np.flatnonzero(several):
        lists[index] = _split(values[index])
    return pd.Series(lists, index=column.index, dtype=object)


def read_access_log(path: Path) -> pd.DataFrame:
    """Parses the harness's access log format; an absent or empty log gives an empty frame.

    Columns: the log fields (``msec`` as float seconds since the epoch, ``status`` int),
    plus ``upstream_addrs`` and ``upstream_statuses`` (lists, one entry per attempt),
    ``attempts`` (int) and ``retried`` (bool: more than one peer was tried).
    """
    frame = read_requests(path)
    frame["upstream_addrs"] = _split_column(frame["upstream_addr"])
    frame["upstream_statuses"] = _split_column(frame["upstream_status"])
    return frame


def read_requests(path: Path, columns: list[str] = COLUMNS) -> pd.DataFrame:
    """The log fields (``columns`` of them, ``upstream_addr`` among them) with ``attempts`` and
    ``retried``, without the per-request lists: what an analysis of a million requests reads."""
    frame = _raw(path, columns)
    addresses = frame["upstream_addr"]
    separators = addresses.str.count(",") + addresses.str.count(" : ")
    frame["attempts"] = np.where(addresses.isin(["-", ""]), 0, separators + 1).astype(int)
    frame["retried"] = frame["attempts"] > 1
    return frame


def is_failure(upstream_status: str) -> bool:
    """An attempt nginx may count against the peer: no answer ("-": refused, reset, timed
    out) or a 5xx. A 3xx or 4xx answer is the application's, never a peer failure."""
    return upstream_status == "-" or upstream_status.startswith("5")


ATTEMPT_COLUMNS = [
    "start",
    "end",
    "msec",
    "address",
    "upstream_status",
    "failed",
    "try",
    "tries",
    "pid",
    "request_status",
]


_ATTEMPT_SOURCES = [
    "msec", "request_time", "upstream_addr", "upstream_status", "upstream_response_time", "pid", "status", "attempts",
]  # fmt: skip


def read_attempts(path: Path) -> pd.DataFrame:
    """``attempts`` of the log at ``path``, read without the per-request lists."""
    return attempts(read_requests(path, [name for name in _ATTEMPT_SOURCES if name != "attempts"]))


def attempts(log: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt on a peer (``log`` from ``read_requests`` or ``read_access_log``).

    Columns: ``start`` and ``end`` of the attempt and ``msec`` (when its request was
    logged), seconds since the epoch; ``address``, ``upstream_status`` ("-" when nginx gave
    up on it or the client left), ``failed``, ``try`` (0-based) of ``tries``, ``pid`` of
    the worker, ``request_status``. An attempt begins when the request began
    (``msec - request_time``) plus the time spent on the attempts before it. Requests the
    client abandoned (499, at the end of a load) are left out: nginx gave up on them, not
    the peer.
    """
    # Only the columns attempts are made of, selected with the rows at once: a log of a
    # million requests is copied once, without its client, URI and key columns.
    wanted = (log["status"] != CLIENT_CLOSED) & (log["attempts"] > 0)
    log = log.loc[wanted, _ATTEMPT_SOURCES]
    single = log[log["attempts"] == 1]
    begun = single["msec"] - single["request_time"].fillna(0.0)
    spent = pd.to_numeric(single["upstream_response_time"], errors="coerce")
    status = single["upstream_status"].where(single["upstream_status"] != "", "-")
    one = pd.DataFrame(
        {
            "start": begun,
            "end": (begun + spent.fillna(0.0)).where(spent.notna(), single["msec"]),
            "msec": single["msec"],
            "address": single["upstream_addr"],
            "upstream_status": status,
            "failed": (status == "-") | status.str.startswith("5"),
            "try": 0,
            "tries": 1,
            "pid": single["pid"],
            "request_status": single["status"],
            "_line": single.index,
        }
    )
    several = _several_attempts(log[log["attempts"] > 1])
    rows = pd.concat([one, several], ignore_index=True) if len(several) else one
    rows = rows.sort_values(["_line", "try"], kind="stable").drop(columns="_line").reset_index(drop=True)
    rows["failed"] = rows["failed"].astype(bool)
    return rows[ATTEMPT_COLUMNS]


def _several_attempts(log: pd.DataFrame) -> pd.DataFrame:
    """The attempts of retried requests, one by one: each begins where the one before it ended."""
    rows = []
    for line, request in zip(log.index, log.to_dict("records"), strict=True):
        addresses = _split(str(request["upstream_addr"]))
        logged = _split(str(request["upstream_status"]))
        statuses = logged + ["-"] * (len(addresses) - len(logged))
        spent = [_seconds(value) or 0.0 for value in _split(str(request["upstream_response_time"]))]
        request_time = request["request_time"]
        begun = float(request["msec"]) - (float(request_time) if pd.notna(request_time) else 0.0)
        elapsed = np.cumsum([0.0, *spent])
        for index, address in enumerate(addresses):
            rows.append(
                {
                    "start": begun + elapsed[min(index, len(spent))],
                    "end": begun + elapsed[index + 1] if index < len(spent) else float(request["msec"]),
                    "msec": request["msec"], "address": address, "upstream_status": statuses[index],
                    "failed": is_failure(statuses[index]), "try": index, "tries": len(addresses),
                    "pid": request["pid"], "request_status": request["status"], "_line": line,
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=[*ATTEMPT_COLUMNS, "_line"])
