"""The web UI in a real headless Chromium: Locust's Backends tab and the console's fault buttons."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
import requests

from harness.net import LOOPBACK, accepts_connections, free_port
from harness.processes import alive, wait_gone
from harness.readiness import WaitStrategy
from tests.live.fixtures import HOLDER

pytestmark = pytest.mark.lb

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (make setup installs them)", allow_module_level=True
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture
def ui(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """``harness ui`` of round robin, or with the options an indirect parameter gives."""
    port = free_port()
    options = getattr(request, "param", ["--algo", "round_robin"])
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "ui", *options, "--web-port", str(port),
         "--results-dir", str(tmp_path / "results")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        WaitStrategy("the web UI", timeout=30).wait(lambda: accepts_connections(LOOPBACK, port))
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        pids = [
            pid
            for journal in (tmp_path / "results").glob("*/journal.jsonl")
            for line in journal.read_text().splitlines()
            for pid in json.loads(line).get("pids", [])
        ]
        assert pids and wait_gone(pids) == [], f"left running: {[p for p in pids if alive(p)]}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_on_failure(driver: Any, path: Path, check: Callable[[], None]) -> None:
    """Runs ``check``; on failure saves what the browser showed next to the test's files and says where."""
    try:
        check()
    except Exception:
        driver.save_screenshot(str(path))
        print(f"screenshot of the failure: {path}")
        raise


def requests_in_tab(driver: Any) -> dict[str, int]:
    counts = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0].startswith("api-gateway-"):
            counts[cells[0]] = int(cells[2])
    return counts


def test_backends_tab_shows_each_instance_and_numbers_move(ui: str, browser: Any, tmp_path: Path) -> None:
    driver = browser
    answer = requests.post(f"{ui}/swarm", data={"user_count": 5, "spawn_rate": 5, "host": ""}, timeout=10)
    assert answer.ok and answer.json()["success"], answer.text
    driver.get(f"{ui}/?tab=backends")

    def tab_has_three_rows_that_grow() -> None:
        first = WaitStrategy("three instances in the Backends tab", timeout=20).wait(
            lambda: requests_in_tab(driver) if len(requests_in_tab(driver)) == 3 else None
        )
        later = WaitStrategy("the counts to move", timeout=20).wait(
            lambda: ((now := requests_in_tab(driver)) and all(now[k] > first[k] for k in first) and now) or None
        )
        assert set(later) == {"api-gateway-1", "api-gateway-2", "api-gateway-3"}, later

    screenshot_on_failure(driver, tmp_path / "backends-tab.png", tab_has_three_rows_that_grow)


def test_a_fault_button_takes_an_instance_out_and_rollback_brings_it_back(
    ui: str, browser: Any, tmp_path: Path
) -> None:
    driver = browser
    requests.post(f"{ui}/swarm", data={"user_count": 5, "spawn_rate": 5, "host": ""}, timeout=10)
    driver.get(f"{ui}/backends")

    def row(instance: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR, f'tr[data-instance="{instance}"]')

    def kill_and_roll_back() -> None:
        WaitStrategy("the console's table", timeout=20).wait(
            lambda: True if driver.find_elements(By.CSS_SELECTOR, 'tr[data-instance="api-gateway-2"]') else None
        )
        row("api-gateway-2").find_element(By.NAME, "inject-kill").click()
        WaitStrategy("api-gateway-2 killed and out of rotation", timeout=20).wait(
            lambda: (
                True
                if row("api-gateway-2").find_element(By.CLASS_NAME, "fault").text == "kill"
                and row("api-gateway-2").find_element(By.CLASS_NAME, "health").text.startswith("out")
                else None
            )
        )
        assert driver.find_elements(By.CSS_SELECTOR, "svg line.marker"), "no fault marker on the time line"
        row("api-gateway-2").find_element(By.NAME, "rollback").click()
        # One predicate for both: the page's timer and the button each start a refresh, and
        # their answers may be drawn in either order.
        WaitStrategy("the rollback in the table and its marker on the time line", timeout=20).wait(
            lambda: (
                True
                if row("api-gateway-2").find_element(By.CLASS_NAME, "fault").text == "-"
                and len(driver.find_elements(By.CSS_SELECTOR, "svg line.marker")) == 2
                else None
            )
        )

    screenshot_on_failure(driver, tmp_path / "backends-console.png", kill_and_roll_back)
    markers = requests.get(f"{ui}/backends/data", timeout=10).json()["markers"]
    assert [(m["action"], m["kind"], m["instance"]) for m in markers] == [
        ("inject", "kill", "api-gateway-2"),
        ("rollback", "kill", "api-gateway-2"),
    ], markers


def sessions_in_tab(driver: Any) -> dict[str, str]:
    return {
        row.get_attribute("data-instance"): row.find_element(By.CLASS_NAME, "sessions").text
        for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr[data-instance]")
    }


def test_the_backends_tab_shows_the_sessions_open_on_each_instance(ui: str, browser: Any, tmp_path: Path) -> None:
    """Two WebSockets held on api-gateway-1 and one on api-gateway-3, straight to the instances."""
    driver = browser
    rows = requests.get(f"{ui}/backends/data", timeout=10).json()["rows"]
    address = {row["instance"]: row["address"] for row in rows}
    command = [sys.executable, "-c", HOLDER]
    holders = [
        subprocess.Popen([*command, f"ws://{address[name]}/api/ws", str(count)], stdin=PIPE, stdout=PIPE, text=True)
        for name, count in (("api-gateway-1", 2), ("api-gateway-3", 1))
    ]
    try:
        for holder in holders:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        driver.get(f"{ui}/backends")
        expected = {"api-gateway-1": "2", "api-gateway-2": "0", "api-gateway-3": "1"}

        def tab_shows_them() -> None:
            WaitStrategy(f"the open sessions {expected} in the tab", timeout=20).wait(
                lambda: True if sessions_in_tab(driver) == expected else None
            )

        screenshot_on_failure(driver, tmp_path / "sessions-tab.png", tab_shows_them)
    finally:
        for holder in holders:
            holder.communicate("close\n", timeout=30)


WEBSOCKET_UI = [
    "--algo", "least_conn", "--workload", "websocket", "--session-hold", "60", "--session-durations", "fixed",
]  # fmt: skip


@pytest.mark.parametrize("ui", [WEBSOCKET_UI], indirect=True)
def test_the_ui_drives_websocket_sessions_and_least_conn_keeps_them_even(ui: str) -> None:
    """Six users of the websocket workload, each holding one 60 s session: least_conn gives each
    instance two, and the Backends data counts them open on the instances themselves."""
    answer = requests.post(f"{ui}/swarm", data={"user_count": 6, "spawn_rate": 6, "host": ""}, timeout=10)
    assert answer.status_code == 200, answer.text

    def two_open_on_each() -> dict[str, int] | None:
        rows = requests.get(f"{ui}/backends/data", timeout=10).json()["rows"]
        open_now = {row["instance"]: int(row["sessions"]) for row in rows}
        return open_now if sum(open_now.values()) == 6 else None

    open_now = WaitStrategy("six sessions open on the instances", timeout=30).wait(two_open_on_each)
    assert open_now == {"api-gateway-1": 2, "api-gateway-2": 2, "api-gateway-3": 2}, open_now
    requests.get(f"{ui}/stop", timeout=10)
