"""Workers of the user's own machines join a run: ``harness bench --join-workers N --bind ADDR`` and
``harness worker --master ADDR:PORT``. Here the "machines" are worker processes that reach the run
at a loopback address other than the harness's own (127.0.0.2), as another host reaches a
routable one: the balancer's route and Locust's master listen there, and nothing else tells the
workers where to send."""

import ipaddress
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from harness.balancers.nginx.access_log import read_requests
from harness.bench import BenchResult
from harness.load.joining import Joining
from harness.net import free_port
from harness.processes import terminate
from harness.pytest_plugin import verdict_report
from harness.readiness import WaitStrategy

pytestmark = pytest.mark.lb
HARNESS = [sys.executable, "-m", "harness.cli.main"]
BIND = "127.0.0.2"
# Blocks of client addresses routed to the workers' hosts (on loopback, every 127/8 address is).
BLOCKS = {"east": ipaddress.IPv4Network("127.64.0.0/16"), "west": ipaddress.IPv4Network("127.65.0.0/16")}
REPORT_INTERVAL_S = 3.0  # Locust's workers report to the master this often


def start_worker(master: str, name: str, log: Path, *extra: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [*HARNESS, "worker", "--master", master, "--name", name, "--runs", "1", *extra],
        stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def master_of(port: int) -> str:
    return f"{BIND}:{port}"


def block_of(client: str) -> str:
    return next((name for name, block in BLOCKS.items() if ipaddress.IPv4Address(client) in block), "")


def logged_picks(run: Path, instances: dict[str, str]) -> Counter:  # type: ignore[type-arg]
    """(client, instance) of every request nginx logged from the workers' blocks (not the harness's
    own probes)."""
    log = read_requests(run / "access.log")
    return Counter(
        (client, instances[peer])
        for client, peer in zip(log["remote_addr"], log["upstream_addr"], strict=True)
        if block_of(client)
    )


def test_two_workers_join_at_the_runs_address_and_add_up_to_nginxs_log(
    lb_bench: "type[BenchResult]", tmp_path: Path
) -> None:
    port = free_port(BIND)
    master = master_of(port)
    # Both ask for the same name: the run makes it unique.
    workers = [
        start_worker(master, "edge", tmp_path / f"{name}.log", "--client-block", str(block))
        for name, block in BLOCKS.items()
    ]
    try:
        result = lb_bench("round_robin", joining=Joining(2, bind=BIND, master_port=port, timeout=60), duration=3)
        codes = [worker.wait(timeout=30) for worker in workers]
    finally:
        for worker in workers:
            terminate(worker)
    assert result.passed, verdict_report(result)
    outputs = [(tmp_path / f"{name}.log").read_text() for name in ("east", "west")]
    assert codes == [0, 0], outputs
    run = result.results[0]
    # The same name asked twice is made unique; each worker says where its load went, and from where.
    assert set(run.load_model["joined_workers"]) == {"edge", "edge-2"}, run.load_model
    assert all(f"to http://{BIND}:" in output for output in outputs), outputs
    assert [f"from {block}" in output for block, output in zip(BLOCKS.values(), outputs, strict=True)] == [True] * 2
    instances = {instance.address: instance.name for instance in run.instances}
    recorded = Counter(zip(run.requests["client"], run.requests["instance"], strict=True))
    logged = logged_picks(result.run_dir / "round_robin", instances)
    # Every request the workers recorded is one nginx logged, client by client and instance by instance.
    assert recorded == logged, (sum(recorded.values()), sum(logged.values()))
    per_worker = Counter(block_of(client) for client, _ in recorded.elements())
    assert set(per_worker) == set(BLOCKS) and min(per_worker.values()) > 0, per_worker
    assert sum(run.load_model["joined_workers"].values()) == len(run.requests)


def test_a_run_whose_workers_do_not_come_says_so_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """A user's config, its algorithm inferred: the run prints the worker command, then gives up."""
    port = free_port(BIND)
    config = Path(__file__).parents[1] / "configs" / "two-upstreams" / "nginx.conf"
    done = subprocess.run(
        [*HARNESS, "bench", "--config", str(config), "--join-workers", "2", "--bind", BIND,
         "--master-port", str(port), "--join-timeout", "1", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "waits up to 1 s for 2 Locust workers to join" in " ".join(done.stdout.split()), done.stdout
    assert f"0 of 2 Locust workers joined in 1 s (joined: none): run `harness worker --master {master_of(port)}`" in (
        output
    ), output
    assert "Traceback" not in done.stderr, done.stderr
    journal = next(tmp_path.glob("*/*/journal.jsonl")).read_text()
    pids = [pid for entry in map(json.loads, journal.splitlines()) for pid in entry.get("pids", [])]
    assert pids and all(not Path(f"/proc/{pid}").exists() for pid in pids), pids


def test_joined_workers_that_die_or_are_stopped_are_named_and_what_they_reported_is_kept(tmp_path: Path) -> None:
    """Three workers: host-a stays; host-b is killed (Locust's heartbeats find it gone); host-c is
    stopped as with Ctrl-C (its users finish their requests, it sends every record and quits)."""
    port = free_port(BIND)
    results = tmp_path / "results"
    bench = subprocess.Popen(
        [*HARNESS, "bench", "--algo", "round_robin", "--join-workers", "3", "--bind", BIND,
         "--master-port", str(port), "--duration", "8", "--results-dir", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The killed worker sends from its own address, as a host joins without a block of its own.
    kept = start_worker(master_of(port), "host-a", tmp_path / "host-a.log", "--client-block", str(BLOCKS["east"]))
    killed = start_worker(master_of(port), "host-b", tmp_path / "host-b.log")
    stopped = start_worker(master_of(port), "host-c", tmp_path / "host-c.log", "--client-block", str(BLOCKS["west"]))
    try:
        run = WaitStrategy("the run's directory", timeout=60).wait(
            lambda: next((path.parent for path in results.glob("*/round_robin/access.log")), None)
        )

        def killed_sent_past_a_report() -> bool | None:
            # nginx writes its log every second: the worker's requests spanning more than a report
            # interval mean it has reported at least once.
            log = read_requests(run / "access.log")
            mine = log[log["remote_addr"] == "127.0.0.1"]
            return True if len(mine) and mine["msec"].max() - mine["msec"].min() > REPORT_INTERVAL_S + 0.5 else None

        WaitStrategy("the killed worker's requests in nginx's log", timeout=60, interval=0.2).wait(
            killed_sent_past_a_report
        )
        killed.send_signal(signal.SIGKILL)
        stopped.send_signal(signal.SIGTERM)
        stdout, stderr = bench.communicate(timeout=120)
        codes = (kept.wait(timeout=30), stopped.wait(timeout=30))
    finally:
        for process in (bench, kept, killed, stopped):
            terminate(process)
    assert bench.returncode == 0, stdout + stderr
    assert codes == (0, 130), codes
    assert "harness worker: stopped" in (tmp_path / "host-c.log").read_text()
    for name in ("host-b", "host-c"):
        assert f"load host {name} was lost" in stdout, stdout
    summary = json.loads((run / "summary.json").read_text())
    assert sorted(summary["load_model"]["lost_load_hosts"]) == ["host-b", "host-c"], summary["load_model"]
    records = pd.read_parquet(run / "requests.parquet")
    instances = {f"{i['host']}:{i['port']}": i["name"] for i in journal_instances(run)}
    recorded = Counter(zip(records["client"], records["instance"], strict=True))
    logged = logged_picks(run, instances)
    # The worker that stayed and the one stopped match the log exactly; the killed one kept what it
    # had reported (the log's 127.0.0.1 holds the harness's own probes besides).
    assert {k: v for k, v in recorded.items() if block_of(k[0])} == logged
    assert {block_of(client) for client, _ in logged} == {"east", "west"}, logged
    assert "from 127.0.0.1" in (tmp_path / "host-b.log").read_text()
    kept_records = sum(v for k, v in recorded.items() if k[0] == "127.0.0.1")
    log = read_requests(run / "access.log")
    sent = int((log["remote_addr"] == "127.0.0.1").sum())
    assert 0 < kept_records <= sent, (kept_records, sent)


def journal_instances(run: Path) -> list[dict]:  # type: ignore[type-arg]
    entries = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    return next(entry for entry in entries if entry["event"] == "instances")["instances"]
