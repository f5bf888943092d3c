"""nginx's access log in the harness's format, parsed into requests and attempts."""

from pathlib import Path

import pandas as pd

from harness.balancers.nginx.access_log import attempts, read_access_log, read_attempts


def write_log(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "access.log"
    path.write_text("".join(line + "\n" for line in lines))
    return path


LINES = [
    "100.000\t127.10.0.1\tGET\t/api/count\t200\t127.0.1.1:8001\t200\t0.002\t0.002\t42\t1\t-",
    "100.500\t127.10.1.1\tGET\t/api/count\t200\t127.0.1.2:8002, 127.0.1.3:8003\t502, 200\t0.001, 0.004\t0.006\t42\t2"
    "\t-",
    "101.000\t127.10.2.1\tGET\t/api/count\t499\t127.0.1.1:8001\t-\t0.001\t0.001\t43\t3\t-",
    "101.5\ttruncated line",
]


def test_retries_show_as_several_attempts(tmp_path: Path) -> None:
    log = read_access_log(write_log(tmp_path, LINES))
    assert len(log) == 3  # the truncated line is left out
    assert log["attempts"].tolist() == [1, 2, 1]
    assert log["retried"].tolist() == [False, True, False]
    assert log.loc[1, "upstream_statuses"] == ["502", "200"]


def test_attempts_know_when_they_began(tmp_path: Path) -> None:
    rows = attempts(read_access_log(write_log(tmp_path, LINES)))
    retried = rows[rows["msec"] == 100.5]
    assert retried["address"].tolist() == ["127.0.1.2:8002", "127.0.1.3:8003"]
    assert retried["start"].round(3).tolist() == [100.494, 100.495]
    assert retried["tries"].tolist() == [2, 2]
    assert retried["end"].round(3).tolist() == [100.495, 100.499]
    assert retried["failed"].tolist() == [True, False]
    assert 101.0 not in rows["msec"].tolist()  # the client left (499): not the peer's failure


def test_an_absent_log_is_empty(tmp_path: Path) -> None:
    assert read_access_log(tmp_path / "none.log").empty


def test_a_line_mangled_past_its_fields_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    mangled = "100.7\t127.10.0.1\tGET\t/api/count\tnot-a-status\t127.0.1.1:8001\t200\t0.002\t0.002\t42\t1\t-"
    log = read_access_log(write_log(tmp_path, [*LINES, mangled]))
    assert len(log) == 3
    assert log["status"].tolist() == [200, 200, 499]


def test_attempts_read_with_categories_are_the_attempts_of_the_whole_log(tmp_path: Path) -> None:
    # read_attempts keeps the peers, statuses and workers as categories, repeats each request's
    # row per attempt and writes the retried ones over theirs: the same table, row by row.
    gave_up = (
        "102.000\t127.10.3.1\tGET\t/api/count\t502\t127.0.1.1:8001, 127.0.1.9:8009\t502, \t0.001, -\t0.003\t44\t4\t-"
    )
    path = write_log(tmp_path, [*LINES[:3], gave_up, LINES[0].replace("100.000", "103.000")])
    lean, whole = read_attempts(path), attempts(read_access_log(path))
    assert isinstance(lean["address"].dtype, pd.CategoricalDtype)
    assert len(lean) == len(whole) == 6
    pd.testing.assert_frame_equal(lean.astype({c: str for c in ("address", "upstream_status", "pid")}), whole,
                                  check_dtype=False)  # fmt: skip
    assert lean["upstream_status"].tolist() == ["200", "502", "200", "502", "-", "200"]
    assert lean["try"].tolist() == [0, 0, 1, 0, 1, 0] and lean["tries"].tolist() == [1, 2, 2, 2, 2, 1]


def test_an_empty_log_has_no_attempts(tmp_path: Path) -> None:
    assert read_attempts(write_log(tmp_path, [])).empty
