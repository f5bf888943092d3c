"""Run directories under results/: ids, the requests table, summaries, the journal."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from harness.errors import SpecError


def new_run_dir(results_dir: Path, label: str) -> Path:
    """Creates ``results_dir/<timestamp>-<label>-<random>`` and returns it.

    The random part keeps two runs started in the same second apart.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = results_dir.resolve() / f"{stamp}-{label}-{secrets.token_hex(2)}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise SpecError(f"results directory {results_dir} is not writable: {exc.strerror}") from exc
    return path


def write_json(path: Path, data: Any) -> Path:
    """Writes atomically: a reader never sees half a file, even after an interruption."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(partial, path)
    return path


RECORDS_FILE = "requests.parquet"
LEGACY_RECORDS_FILE = "requests.csv"  # what runs before the columnar records wrote


def write_records(frame: pd.DataFrame, path: Path) -> Path:
    """The clients' records, column-wise (Parquet): a million of them write and read back in
    a fraction of a second, each column with its type."""
    table = frame.copy(deep=False)
    for column in [name for name in table.columns if pd.api.types.is_object_dtype(table[name])]:
        try:
            pa.array(table[column].to_numpy(dtype=object), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # A column holding text and numbers (a gRPC connection number beside "") stays text.
            table[column] = table[column].astype(str)
    partial = path.with_suffix(path.suffix + ".partial")
    table.to_parquet(partial, index=False)
    os.replace(partial, path)
    return path


def read_records(directory: Path) -> pd.DataFrame:
    """The records a run directory holds (an empty frame when it holds none)."""
    if (directory / RECORDS_FILE).exists():
        frame = pd.read_parquet(directory / RECORDS_FILE)
        # Arrow's pool keeps the reader's buffers for later reads: a million records' worth.
        pa.default_memory_pool().release_unused()
        return frame
    if (directory / LEGACY_RECORDS_FILE).exists():
        frame = pd.read_csv(directory / LEGACY_RECORDS_FILE)
        for column in ("instance", "error", "client"):
            if column in frame:  # an empty text cell reads back as NaN
                frame[column] = frame[column].astype(object).fillna("").astype(str)
        return frame
    return pd.DataFrame()


def write_requests(frame: pd.DataFrame, path: Path) -> Path:
    """A small table (a fault's row, a matrix) as CSV, for a spreadsheet or ``column -t``."""
    partial = path.with_suffix(path.suffix + ".partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)
    return path


class Journal:
    """An append-only record of what a run did, one JSON object per line, flushed at once.

    It names every process the run started, so a test (or a person) can check that none
    is left after the run, even when the run was interrupted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, event: str, **data: Any) -> None:
        line = json.dumps({"time": time.time(), "event": event, **data}, default=str)
        with self.path.open("a") as journal:
            journal.write(line + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def pids(self) -> list[int]:
        return [int(pid) for entry in self.entries() for pid in entry.get("pids", [])]
