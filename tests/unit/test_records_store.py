"""The clients' records on disk: column-wise, typed, and read back as they were written."""

from pathlib import Path

import pandas as pd

from harness.load.records import COLUMNS
from harness.results.store import RECORDS_FILE, read_records, write_records


def records() -> pd.DataFrame:
    return pd.DataFrame(
        [
            [1796000000.125, "127.10.0.1", "api-gateway-1", 200, 1.5, "/api/count", "", ""],
            [1796000000.250, "127.10.0.2", "", 0, 3.0, "/harness.Echo/Unary", "ConnectionError: refused", 7],
        ],
        columns=COLUMNS,
    )


def test_records_read_back_with_their_types(tmp_path: Path) -> None:
    write_records(records(), tmp_path / RECORDS_FILE)
    back = read_records(tmp_path)
    assert list(back.columns) == COLUMNS
    assert back["status"].tolist() == [200, 0] and back["time"].tolist() == [1796000000.125, 1796000000.25]
    # A column of text beside numbers (gRPC connection numbers) is kept as text.
    assert back["connection"].tolist() == ["", "7"] and back["instance"].tolist() == ["api-gateway-1", ""]
    assert not list(tmp_path.glob("*.partial"))


def test_a_run_written_as_csv_still_reads(tmp_path: Path) -> None:
    records().to_csv(tmp_path / "requests.csv", index=False)
    back = read_records(tmp_path)
    assert back["instance"].tolist() == ["api-gateway-1", ""] and back["error"].tolist()[0] == ""


def test_a_directory_without_records_reads_as_empty(tmp_path: Path) -> None:
    assert read_records(tmp_path).empty
