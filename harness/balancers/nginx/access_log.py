"""nginx's own record of each request, from the run's access log, as a DataFrame.

One row per client request. When nginx tried several peers (a retry after a refused
connection or a timeout), ``$upstream_addr`` and ``$upstream_status`` list them in order,
separated by ", "; ``attempts`` keeps them as lists of equal length.

Parsing is column-wise (pandas' C reader, string methods on whole columns): a log of a
long scenario holds hundreds of thousands of lines, and only the few retried requests take
a per-row path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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
# Text of few distinct values (peers, statuses, workers) read as categories: a million
# requests' addresses then take a code each, not a string each.
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _raw(path: Path, columns: list[str] = COLUMNS, dictionary: Collection[str] = ()) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        frame = pd.DataFrame({column: pd.Series(dtype=str) for column in columns})
        kinds = {name: kind.to_pandas_dtype() for name, kind in _NUMERIC.items() if name in columns}
        return frame.astype({**kinds, **{name: "category" for name in dictionary if name in columns}})
    try:
        return _read(path, {**_NUMERIC, **dict.fromkeys(dictionary, _DICTIONARY)}, columns)
    except pa.ArrowInvalid:
        # A line mangled past its field count (a crash mid-write): read as text, and drop what is not a number.
        frame = _read(path, dict.fromkeys(dictionary, _DICTIONARY), columns)
        for column in [name for name in _NUMERIC if name in frame and name not in dictionary]:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame = frame.dropna(subset=[name for name in ("msec", "status") if name in frame])
        return frame.astype({"status": int}).reset_index(drop=True)


def _read(path: Path, types: dict[str, pa.DataType], columns: list[str]) -> pd.DataFrame:
    """Arrow's reader, without quoting (nginx escapes quotes as \\x22); a line cut short by a
    crash has fewer fields and is skipped, the rest of the log still counts. Only ``columns``
    are converted: the others are skipped over, not kept. Columns ``types`` does not name are text."""
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=COLUMNS),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=lambda _: "skip"),
        convert_options=pa_csv.ConvertOptions(
            column_types={column: types.get(column, pa.string()) for column in COLUMNS},
            strings_can_be_null=False, null_values=[], include_columns=columns,
        ),
    )  # fmt: skip
    frame: pd.DataFrame = table.to_pandas()
    del table
    # Arrow's pool keeps the reader's buffers for later reads: as much again as the log's columns.
    pa.default_memory_pool().release_unused()
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


def read_requests(path: Path, columns: list[str] = COLUMNS, dictionary: Collection[str] = ()) -> pd.DataFrame:
    """The log fields (``columns`` of them, ``upstream_addr`` among them) with ``attempts`` and
    ``retried``, without the per-request lists: what an analysis of a million requests reads.
    The ``dictionary`` columns are categorical."""
    frame = _raw(path, columns, dictionary)
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
    sources = [name for name in _ATTEMPT_SOURCES if name != "attempts"]
    return attempts(read_requests(path, sources, dictionary=_FEW_VALUES))


# The log's text columns attempts are made of: each holds few distinct values.
_FEW_VALUES = ("upstream_addr", "upstream_status", "upstream_response_time", "pid")


def _by_value(column: pd.Series, function: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``function`` of a text column, worked out once per distinct value when it is categorical."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return function(column)
    values = function(pd.Series(column.cat.categories))
    return pd.Series(values.to_numpy()[column.cat.codes.to_numpy()], index=column.index)


def _dash_for_empty(status: pd.Series) -> pd.Series:
    """``upstream_status`` with "" (nginx gave up before any answer) written as "-"."""
    if not isinstance(status.dtype, pd.CategoricalDtype):
        return status.where(status != "", "-")
    if "" not in status.cat.categories:
        return status
    if "-" not in status.cat.categories:
        return status.cat.rename_categories(lambda value: value or "-")
    return status.cat.remove_categories([""]).fillna("-")


def attempts(log: pd.DataFrame) -> pd.DataFrame:
    """One row per attempt on a peer (``log`` from ``read_requests`` or ``read_access_log``).

    Columns: ``start`` and ``end`` of the attempt and ``msec`` (when its request was
    logged), seconds since the epoch; ``address``, ``upstream_status`` ("-" when nginx gave
    up on it or the client left), ``failed``, ``try`` (0-based) of ``tries``, ``pid`` of
    the worker, ``request_status``. An attempt begins when the request began
    (``msec - request_time``) plus the time spent on the attempts before it. Requests the
    client abandoned (499, at the end of a load) are left out: nginx gave up on them, not
    the peer.

    Every request's row is repeated once per attempt, in the log's order, and the few retried
    requests' attempts are then written over their rows: the table is made once, not sorted.
    """
    log = log.loc[(log["status"] != CLIENT_CLOSED) & (log["attempts"] > 0)]
    tries = log["attempts"].to_numpy()
    row = np.repeat(np.arange(len(log)), tries)
    firsts = np.cumsum(tries) - tries  # where each request's attempts begin
    msec = log["msec"].to_numpy()[row]
    begun = msec - np.nan_to_num(log["request_time"].to_numpy(dtype=float)[row])
    spent = _by_value(log["upstream_response_time"], lambda v: pd.to_numeric(v, errors="coerce")).to_numpy()[row]
    status = _dash_for_empty(log["upstream_status"])
    failed = _by_value(status, lambda v: (v == "-") | v.str.startswith("5")).to_numpy(dtype=bool)
    rows = pd.DataFrame(
        {
            "start": begun,
            "end": np.where(np.isnan(spent), msec, begun + np.nan_to_num(spent)),
            "msec": msec,
            "address": log["upstream_addr"].iloc[row].reset_index(drop=True),
            "upstream_status": status.iloc[row].reset_index(drop=True),
            "failed": failed[row],
            "try": np.arange(len(row)) - firsts.repeat(tries),
            "tries": tries[row],
            "pid": log["pid"].iloc[row].reset_index(drop=True),
            "request_status": log["status"].to_numpy()[row],
        },
        copy=False,
    )
    retried = log[tries > 1]
    if len(retried):
        _write_over(rows, _several_attempts(retried), firsts[log.index.get_indexer(retried.index)])
        # A retried request's address list was a value of its own: gone now that its attempts are written.
        for column in ("address", "upstream_status"):
            if isinstance(rows[column].dtype, pd.CategoricalDtype):
                rows[column] = rows[column].cat.remove_unused_categories()
    return rows


def _write_over(rows: pd.DataFrame, several: pd.DataFrame, firsts: np.ndarray) -> None:
    """The retried requests' attempts, ``several`` (with the request's ``_line`` and each
    ``try``), written over their rows; ``firsts``: where each retried request's rows begin."""
    starts = dict(zip(several["_line"].drop_duplicates(), firsts, strict=True))
    positions = several["_line"].map(starts).to_numpy(dtype=int) + several["try"].to_numpy(dtype=int)
    for column in ATTEMPT_COLUMNS:
        values = several[column]
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            new = pd.Index(values.unique()).difference(rows[column].cat.categories)
            rows[column] = rows[column].cat.add_categories(new)
        written = rows[column].copy()
        written.iloc[positions] = values.to_numpy()
        rows[column] = written


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
