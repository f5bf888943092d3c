"""Session load: idle WebSockets held open by one Locust process, and sessions opened and closed per second.

Each run starts 3 instances behind nginx (``nginx-sessions.conf``: least_conn, the upgrade
headers, 16,384 worker connections) and, in this process, Locust's local runner with the
harness's WebSocket users:

- **held**: ``--sessions`` users each open one WebSocket that stays idle (no message for
  ``IDLE_S``) until all are open, counted on the instances' ``/control/state``; the figure is
  this process's RSS and PSS then, and per session the growth from before the users started.
  Reference in the same run: a plain asyncio client (aiohttp) in a process of its own holding
  as many WebSockets through the same nginx, no Locust.
- **churn**: ``--churn-users`` users open sessions of 50 ms one after another for
  ``--churn-seconds``; the figure is sessions completed per second (the sessions' length
  alone would allow users / 50 ms: 4,000 a second for 200 users). Reference in the same run:
  the harness's request users (FastHttpUser) sending short GETs for as long, requests per second.

The script prints medians over ``--runs`` and writes every run to ``results/sessions.json``.
Everything runs on 127.0.0.0/8; every process is stopped by pid when its run ends.

Usage: ``python benchmarks/sessions.py [--runs 3] [--sessions 5000] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)
from locust.env import Environment

from harness import BenchSpec, open_cluster, prepare
from harness.backends import control
from harness.load.route import FixedRoute
from harness.load.session_users import make_session_user_class
from harness.load.users import make_user_class
from harness.load.workload import Workload
from harness.results.store import new_run_dir

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "nginx-sessions.conf"
DEFAULT_OUTPUT = HERE / "results" / "sessions.json"
IDLE_S = 600.0  # a held session's length and its message interval: no traffic while measured
SPAWN_RATE = 500.0  # users started per second
CHURN_HOLD_S = 0.05  # the shortest session the workload allows

# Holds COUNT WebSockets to URL open, prints its own RSS and PSS once all are open, waits for stdin.
PLAIN_HOLDER = r"""
import asyncio, sys
import aiohttp

def memory():
    rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
    pss = int(next(l for l in open("/proc/self/smaps_rollup") if l.startswith("Pss:")).split()[1])
    return rss, pss

async def main(url, count):
    before = memory()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(n):
            return await session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=30))
        sockets = []
        for start in range(0, count, 200):
            sockets += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 200))))
        print(*before, *memory(), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(s.close() for s in sockets))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def memory_kb() -> tuple[int, int]:
    """This process's RSS and PSS in kB."""
    with open("/proc/self/status") as status:
        rss = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    with open("/proc/self/smaps_rollup") as rollup:
        pss = int(next(line for line in rollup if line.startswith("Pss:")).split()[1])
    return rss, pss


def open_sessions(cluster: Any) -> int:
    return sum(int(control.state(i)["sessions"]["websocket"]) for i in cluster.instances_under_test)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        gevent.sleep(0.2)


def held(cluster: Any, route: FixedRoute, count: int) -> dict[str, float]:
    """``count`` idle WebSockets in Locust users here, then as many in a plain asyncio client."""
    workload = Workload("websocket", hold=IDLE_S, durations="fixed", every=IDLE_S)
    environment = Environment(user_classes=[make_session_user_class(route, workload)], host=route.url)
    runner = environment.create_local_runner()
    before = memory_kb()
    started = time.monotonic()
    try:
        runner.start(count, spawn_rate=SPAWN_RATE)
        wait_for(lambda: open_sessions(cluster) >= count, 60 + count / SPAWN_RATE, f"{count} open sessions")
        opened_s = time.monotonic() - started
        rss, pss = memory_kb()
    finally:
        runner.quit()
    wait_for(lambda: open_sessions(cluster) == 0, 60, "the Locust sessions to close")
    url = route.url.replace("http://", "ws://") + f"/api/ws?hold={IDLE_S:g}s&every={IDLE_S:g}s"
    plain = subprocess.Popen(
        [sys.executable, "-c", PLAIN_HOLDER, url, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert plain.stdout is not None
        plain_rss_before, _, plain_rss, plain_pss = (int(v) for v in plain.stdout.readline().split())
        plain_open = open_sessions(cluster)
    finally:
        plain.communicate("close\n", timeout=60)
    return {
        "sessions": count, "open_s": round(opened_s, 2),
        "locust_rss_mb": round(rss / 1024, 1), "locust_pss_mb": round(pss / 1024, 1),
        "locust_kb_per_session": round((rss - before[0]) / count, 1),
        "plain_open": plain_open, "plain_rss_mb": round(plain_rss / 1024, 1),
        "plain_pss_mb": round(plain_pss / 1024, 1),
        "plain_kb_per_session": round((plain_rss - plain_rss_before) / count, 1),
    }  # fmt: skip


def rate(route: FixedRoute, user_class: type, users: int, seconds: float) -> float:
    """Events per second of ``users`` users of ``user_class`` after they have all started."""
    environment = Environment(user_classes=[user_class], host=route.url)
    counted = []
    environment.events.request.add_listener(lambda **event: counted.append(event["exception"] is None))
    runner = environment.create_local_runner()
    try:
        runner.start(users, spawn_rate=users * 10)
        gevent.sleep(users / (users * 10) + 0.5)
        counted.clear()
        started = time.monotonic()
        gevent.sleep(seconds)
        done, took = sum(counted), time.monotonic() - started
    finally:
        runner.quit()
    return done / took


def churn(route: FixedRoute, users: int, seconds: float) -> dict[str, float]:
    workload = Workload("websocket", hold=CHURN_HOLD_S, durations="fixed", every=CHURN_HOLD_S)
    sessions = rate(route, make_session_user_class(route, workload), users, seconds)
    requests = rate(route, make_user_class(route.url, "/api/count"), users, seconds)
    return {
        "users": users, "sessions_per_s": round(sessions, 1), "requests_per_s": round(requests, 1),
        "ratio": round(sessions / requests, 3),
    }  # fmt: skip


def one_run(sessions: int, churn_users: int, churn_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sessions-bench-") as results:
        spec = BenchSpec(algorithms=("least_conn",), config=CONFIG, results_dir=Path(results))
        plan = prepare(spec, command="up")
        with open_cluster(plan, plan.only, new_run_dir(Path(results), "sessions")) as cluster:
            route = FixedRoute(cluster.url)
            return {
                "held": held(cluster, route, sessions),
                "churn": churn(route, churn_users, churn_seconds),
                "load_average": os.getloadavg()[0],
            }


def median_of(runs: list[dict[str, Any]], part: str, key: str) -> float:
    return round(statistics.median(run[part][key] for run in runs), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--churn-users", type=int, default=200)
    parser.add_argument("--churn-seconds", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="1 run of 500 sessions and 3 s of churn")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.sessions, args.churn_seconds = 1, 500, 3.0
    logging.getLogger("locust").setLevel(logging.ERROR)  # not the high spawn rate's warning
    if args.one_run:
        print(json.dumps(one_run(args.sessions, args.churn_users, args.churn_seconds)))
        return 0
    runs = []
    for number in range(args.runs):
        # A fresh process each run: the memory figures are one Locust process's from its start.
        argv = [sys.executable, __file__, "--one-run", "--sessions", str(args.sessions),
                "--churn-users", str(args.churn_users), "--churn-seconds", str(args.churn_seconds)]  # fmt: skip
        finished = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if finished.returncode != 0:
            raise SystemExit(f"run {number + 1} failed: {finished.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(finished.stdout.strip().splitlines()[-1]))
        print(f"run {number + 1}/{args.runs}: {json.dumps(runs[-1])}", flush=True)
    rows = [
        ("idle WebSockets held by one Locust process", args.sessions, ""),
        ("  all open after, s", median_of(runs, "held", "open_s"), ""),
        ("  Locust process RSS, MB", median_of(runs, "held", "locust_rss_mb"), "< 1024"),
        ("  Locust process PSS, MB", median_of(runs, "held", "locust_pss_mb"), ""),
        ("  growth per session, kB (RSS)", median_of(runs, "held", "locust_kb_per_session"), ""),
        ("  reference: plain aiohttp client RSS, MB", median_of(runs, "held", "plain_rss_mb"), ""),
        ("  reference: growth per session, kB (RSS)", median_of(runs, "held", "plain_kb_per_session"), ""),
        (f"session churn, {args.churn_users} users, sessions/s", median_of(runs, "churn", "sessions_per_s"), ""),
        ("  reference: short GETs, requests/s", median_of(runs, "churn", "requests_per_s"), ""),
        ("  ratio sessions / requests", median_of(runs, "churn", "ratio"), ""),
    ]
    print(f"\nmedians of {args.runs} runs")
    for name, value, target in rows:
        print(f"{name:<48} {value:>10}  {target}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": runs, "sessions": args.sessions}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
