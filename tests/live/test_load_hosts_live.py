"""Load from several hosts on Locust's distributed mode, the hosts simulated by network namespaces."""

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
from harness.processes import wait_gone
from harness.pytest_plugin import verdict_report
from harness.readiness import WaitStrategy

pytestmark = pytest.mark.lb
HARNESS = [sys.executable, "-m", "harness.cli.main"]
REPORT_INTERVAL_S = 3.0  # Locust's workers report to the master this often (WORKER_REPORT_INTERVAL)


def journal(run: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {entry["event"]: entry for entry in map(json.loads, (run / "journal.jsonl").read_text().splitlines())}


def host_of(blocks: dict[str, ipaddress.IPv4Network], address: str) -> str:
    return next((name for name, block in blocks.items() if ipaddress.IPv4Address(address) in block), "")


def picks_by_host(run: Path, instances: dict[str, str], blocks: dict[str, ipaddress.IPv4Network]) -> Counter:  # type: ignore[type-arg]
    """(host, client, instance) of every request nginx logged from a load host."""
    log = read_requests(run / "access.log")
    return Counter(
        (host_of(blocks, client), client, instances[peer])
        for client, peer in zip(log["remote_addr"], log["upstream_addr"], strict=True)
        if host_of(blocks, client)
    )


def records_by_host(records: pd.DataFrame, blocks: dict[str, ipaddress.IPv4Network]) -> Counter:  # type: ignore[type-arg]
    return Counter(
        (host_of(blocks, client), client, instance)
        for client, instance in zip(records["client"], records["instance"], strict=True)
    )


def run_with_workers(results: Path) -> Path | None:
    """The run directory under ``results`` once its Locust workers run."""
    journals = results.glob("*/*/journal.jsonl")
    return next((path.parent for path in journals if '"load workers"' in path.read_text()), None)


def namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_three_load_hosts_send_from_their_own_networks_and_add_up_to_nginxs_log(
    lb_bench: "type[BenchResult]",
) -> None:
    before = namespaces()
    result = lb_bench("round_robin", load_hosts=3, duration=3)
    assert result.passed, verdict_report(result)
    run = result.results[0]
    events = journal(result.run_dir / "round_robin")
    blocks = {host["name"]: ipaddress.IPv4Network(host["clients"]) for host in events["load hosts"]["hosts"]}
    assert len(blocks) == 3 and run.load_model["load_hosts"] == 3, run.load_model
    instances = {instance.address: instance.name for instance in run.instances}
    logged = picks_by_host(result.run_dir / "round_robin", instances, blocks)
    recorded = records_by_host(run.requests, blocks)
    # Every request the workers recorded is one nginx logged, client by client and instance by
    # instance, and from each host's own network.
    assert recorded == logged, (sum(recorded.values()), sum(logged.values()))
    per_host = Counter(host for host, _, _ in recorded.elements())
    assert set(per_host) == set(blocks) and min(per_host.values()) > 0, per_host
    per_instance = Counter(instance for _, _, instance in recorded.elements())
    assert {row.instance: row.requests for row in run.rows} == dict(per_instance), per_instance
    assert wait_gone(events["load workers"]["pids"]) == []
    assert namespaces() <= before, namespaces() - before


def test_a_lost_load_host_is_named_and_what_it_reported_is_kept(tmp_path: Path) -> None:
    before = namespaces()
    process = subprocess.Popen(
        [*HARNESS, "bench", "--algo", "round_robin", "--load-hosts", "3", "--duration", "8",
         "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        run = WaitStrategy("the run's load hosts", timeout=60).wait(lambda: run_with_workers(tmp_path))
        events = journal(run)
        blocks = {host["name"]: ipaddress.IPv4Network(host["clients"]) for host in events["load hosts"]["hosts"]}

        def host_2_sent_past_a_report() -> bool | None:
            # nginx writes its log every second: host 2's requests spanning more than a report
            # interval mean its worker has reported at least once.
            log = read_requests(run / "access.log")
            mine = log[[host_of(blocks, client) == "load-host-2" for client in log["remote_addr"]]]
            return True if len(mine) and mine["msec"].max() - mine["msec"].min() > REPORT_INTERVAL_S + 0.5 else None

        WaitStrategy("load host 2's requests in nginx's log", timeout=30, interval=0.2).wait(host_2_sent_past_a_report)
        lost_pid = events["load workers"]["pids"][1]
        subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(lost_pid)], check=True)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stdout + stderr
    assert "load host load-host-2 was lost" in stdout and "records reported are kept" in stdout, stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["load_model"]["lost_load_hosts"] == ["load-host-2"], summary["load_model"]
    instances = {f"{i['host']}:{i['port']}": i["name"] for i in journal(run)["instances"]["instances"]}
    logged = picks_by_host(run, instances, blocks)
    recorded = records_by_host(pd.read_parquet(run / "requests.parquet"), blocks)
    for host in ("load-host-1", "load-host-3"):
        mine = {key: count for key, count in recorded.items() if key[0] == host}
        assert mine == {key: count for key, count in logged.items() if key[0] == host}, host
    kept = sum(count for key, count in recorded.items() if key[0] == "load-host-2")
    sent = sum(count for key, count in logged.items() if key[0] == "load-host-2")
    assert 0 < kept <= sent, (kept, sent)
    assert journal(run)["load host lost"]["records"] == kept
    assert wait_gone(events["load workers"]["pids"]) == []
    assert namespaces() <= before, namespaces() - before


def test_a_production_config_over_tls_runs_from_load_hosts(lb_bench: "type[BenchResult]") -> None:
    """prod-tls: includes, an 80 -> 443 redirect server first, `listen 443 ssl http2`, certificates
    under /etc/letsencrypt. The hosts reach it at the run's front, which the run's certificates
    name, and verify it."""
    config = Path(__file__).parents[1] / "configs" / "prod-tls" / "nginx.conf"
    result = lb_bench("least_conn", config=config, load_hosts=2, duration=2)
    assert result.passed, verdict_report(result)
    run = result.results[0]
    assert run.load_model["load_hosts"] == 2 and len(run.requests) > 0
    note = next(note for note in run.notes if note.startswith("load from 2 hosts"))
    assert "load-host-1" in note and "load-host-2" in note, note
    blocks = [ipaddress.IPv4Network("10.0.0.0/11"), ipaddress.IPv4Network("10.32.0.0/11")]
    senders = {next(i for i, b in enumerate(blocks) if ipaddress.IPv4Address(c) in b) for c in run.requests["client"]}
    assert senders == {0, 1}, set(run.requests["client"])
