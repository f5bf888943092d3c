"""Reports from real runs: the HTML says what the run's data says, it renders, and compare catches a regression."""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.bench import BenchResult
from harness.matrix import Matrix, matrix_row
from harness.reports.latency import percentiles
from tests.live.fixtures import kill_scenario, short_fail_timeout_nginx

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]


def cells(page: str, css_class: str) -> list[str]:
    return re.findall(rf'<td class="{css_class}">([^<]*)</td>', page)


def test_the_report_shows_the_runs_numbers(lb_bench: Bench, tmp_path: Path) -> None:
    config, scenario = short_fail_timeout_nginx(tmp_path), kill_scenario(tmp_path)
    result = lb_bench("health_checks", config=config, scenario=str(scenario))
    assert result.report is not None and result.report.is_file()
    page = result.report.read_text()
    run = result.results[0]
    counts = run.requests["instance"].value_counts().to_dict()
    shown = dict(re.findall(r'<tr data-instance="([^"]+)">.*?<td class="requests">(\d+)</td>', page, re.S))
    assert {name: int(value) for name, value in shown.items()} == {name: counts.get(name, 0) for name in shown}, shown
    assert cells(page, "total") == [str(len(run.requests))]
    expected = percentiles(run.requests["latency_ms"])
    assert cells(page, "p99") == [f"{expected['p99']} ms"], cells(page, "p99")
    (row,) = run.failover
    assert cells(page, "client_errors") == [str(row.client_errors)]
    assert page.count('<td class="text PASS">PASS</td>') == sum(1 for v in run.verdicts if v.passed)
    assert page.count("<svg") >= 3  # shares, latency over time, the fault's time line
    assert "closed model" in page and "HDR histogram" in page
    assert "max_fails=3 fail_timeout=2s" in page  # the generated config


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian's chromium and chromium-driver are not installed (make setup installs them)",
)
def test_the_report_renders_in_a_browser(lb_bench: Bench, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    result = lb_bench("weighted", duration=2)
    assert result.report is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1200,2400", f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(result.report.as_uri())
        screenshot = tmp_path / "report.png"
        driver.save_screenshot(str(screenshot))
        print(f"screenshot of the report: {screenshot}")
        assert driver.title.startswith("lb-harness report")
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg")) >= 2
        bars = driver.find_element(By.CSS_SELECTOR, "table.instances").text
        assert "75.0%" in bars and "25.0%" in bars, bars
        assert screenshot.stat().st_size > 10_000
    finally:
        driver.quit()


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli.main", *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_compare_passes_a_rerun_and_flags_a_worse_config(lb_bench: Bench) -> None:
    baseline = lb_bench("round_robin", duration=2)
    rerun = lb_bench("round_robin", duration=2)
    worse = lb_bench("round_robin", config=shipped_config(ALGORITHMS["weighted"]), duration=2)
    same = harness("compare", str(baseline.run_dir), str(rerun.run_dir))
    assert same.returncode == 0 and "no regression" in same.stdout, same.stdout + same.stderr
    changed = harness("compare", str(baseline.run_dir), str(worse.run_dir))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "REGRESSION" in changed.stdout and "verdict: spread under load" in changed.stdout, changed.stdout


def test_a_matrix_row_and_its_files(lb_bench: Bench, tmp_path: Path) -> None:
    result = lb_bench("weighted", duration=2)
    row = matrix_row("nginx", "", result.results[0])
    assert row.requests == len(result.results[0].requests) and row.verdicts_failed == 0
    assert row.distribution_error_points is not None and row.distribution_error_points < 1.0
    csv, html = Matrix(tmp_path, [row]).save()
    assert "nginx,weighted" in csv.read_text() and "<td>weighted</td>" in html.read_text()
