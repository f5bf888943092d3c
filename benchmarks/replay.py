"""How long the analysis of a long run takes: the replay of every pick through its algorithm's
model, and the failover analysis of a fault scenario's log.

Each figure reads a log in the harness's nginx access-log format, written by this script to a
temporary directory: 1,000,000 picks for each replayed algorithm (nginx's smooth weighted round
robin, ip_hash over 1,000 clients, ``hash $request_uri consistent`` over 5,000 keys, least_conn
with each request held 2 ms), and 190,000 requests of a round-robin run during which one of
three instances is killed and started again (its failed attempts retried on the next peer).
The picks are made by the models themselves (the harness's live tests hold the models to real
nginx); what is timed is the analysis, from the file on disk to the verdicts.

Each is replayed against a config of the same three servers (weights 3, 2, 1 for round robin).
The reference, timed in the same run on the same file, is pandas' C reader of the same
tab-separated file (``pd.read_csv``), the least any analysis of the log must spend; for the
failover analysis also the per-line Python loop that split each line and each attempt (the
parser this one replaced). Figures are medians of ``--runs`` runs.

Usage: ``python benchmarks/replay.py [--runs 5] [--records 1000000] [--failover-lines 190000]``.
Nothing here starts a process or opens a socket.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harness.balancers.kind import FaultRun, PicksRun
from harness.balancers.nginx.access_log import COLUMNS, read_access_log, read_attempts
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.failover import PassiveFailover
from harness.balancers.nginx.health import passive_checks
from harness.balancers.nginx.replay import replay_run
from harness.infra import infra_path
from harness.models.nginx_hash import ConsistentHashRing, ip_hash
from harness.models.nginx_round_robin import LeastConn, SmoothWeightedRoundRobin
from harness.models.peers import ModelPeer
from harness.net import ClientPopulation
from harness.results.faults import FaultRecord
from harness.runtimes.base import Instance

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "replay.json"
START_S = 1_796_000_000.0
PER_MS = 5  # picks per millisecond: about the harness's Locust load on this machine
PEERS = [("api-gateway-1", "127.0.1.1:8001", 3), ("api-gateway-2", "127.0.1.2:8001", 2)]
PEERS.append(("api-gateway-3", "127.0.1.3:8001", 1))
# The upstream each algorithm's log is replayed against, over the three servers of PEERS.
OPTIONS = {
    "round_robin": "", "ip_hash": "ip_hash;", "hash": "hash $request_uri consistent;", "least_conn": "least_conn;",
}  # fmt: skip


def write_config(folder: Path, algorithm: str) -> Path:
    weighted = algorithm == "round_robin"
    servers = " ".join(f"server {name}:3000{f' weight={w}' if weighted else ''};" for name, _, w in PEERS)
    path = folder / f"{algorithm}.conf"
    path.write_text(
        f"events {{}}\nhttp {{ upstream app {{ {OPTIONS[algorithm]} {servers} }}\n"
        "server { listen 80; location / { proxy_pass http://app; } } }\n"
    )
    return path


def instances() -> list[Instance]:
    return [Instance(name, name, address.split(":")[0], int(address.split(":")[1]), 0, 0)
            for name, address, _ in PEERS]  # fmt: skip


def line(start_ms: int, client: str, uri: str, address: str, status: str, spent_ms: int, key: str) -> str:
    seconds = spent_ms / 1000
    return "\t".join([
        f"{(start_ms + spent_ms) / 1000:.3f}", client, "GET", uri, "200", address, status,
        f"{seconds:.3f}", f"{seconds:.3f}", "4242", "1", key,
    ])  # fmt: skip


def write_picks(path: Path, algorithm: str, count: int, weighted: bool) -> None:
    """``count`` picks of ``algorithm`` as its model makes them, five a millisecond."""
    peers = [ModelPeer(address, weight if weighted else 1) for _, address, weight in PEERS]
    clients = ClientPopulation(1000, 1000).addresses()
    rng = random.Random(7)
    swrr, least, ring = SmoothWeightedRoundRobin(peers), LeastConn(peers), ConsistentHashRing(peers)
    open_until: list[tuple[int, str]] = []
    with path.open("w") as log:
        for index in range(count):
            ms = int(START_S * 1000) + index // PER_MS
            client = clients[index % len(clients)]
            uri, key = "/api/count", "-"
            if algorithm == "round_robin":
                address = swrr.pick().exact  # type: ignore[union-attr]
            elif algorithm == "ip_hash":
                address = ip_hash(client, peers).exact
            elif algorithm == "hash":
                uri = key = f"/api/key-k{rng.randrange(5000)}/count"
                address = ring.pick(key).exact
            else:
                open_until = [(end, peer) for end, peer in open_until if end > ms]
                conns = {peer.name: sum(1 for _, name in open_until if name == peer.name) for peer in peers}
                address = least.pick(conns).exact  # type: ignore[union-attr]
                open_until.append((ms + 2, address))  # type: ignore[arg-type]
            log.write(line(ms, client, uri, str(address), "200", 2 if algorithm == "least_conn" else 1, key) + "\n")


def write_failover(path: Path, count: int) -> tuple[float, float]:
    """A round-robin run of ``count`` requests with the third peer killed from 40% to 70% of it:
    its first attempt then fails and goes to the next peer; nginx then leaves it out. Returns
    the kill and the restart, seconds since the epoch."""
    peers = [ModelPeer(address) for _, address, _ in PEERS]
    swrr = SmoothWeightedRoundRobin(peers)
    dead = PEERS[2][1]
    killed_at, back_at = int(count * 0.4), int(count * 0.7)
    with path.open("w") as log:
        for index in range(count):
            ms = int(START_S * 1000) + index // PER_MS
            failed = frozenset({dead}) if killed_at + 1 <= index < back_at else frozenset()
            address = str(swrr.pick(failed=failed))
            if index == killed_at and address != dead:
                address = dead
            if address == dead and killed_at <= index < back_at:
                retry = PEERS[0][1]
                fields = line(ms, "127.10.0.1", "/api/count", f"{dead}, {retry}", "502, 200", 1, "-").split("\t")
                fields[7] = "0.000, 0.001"
                log.write("\t".join(fields) + "\n")
                continue
            log.write(line(ms, "127.10.0.1", "/api/count", address, "200", 1, "-") + "\n")
    per_s = PER_MS * 1000
    return START_S + killed_at / per_s, START_S + back_at / per_s


def clients_of(path: Path) -> pd.DataFrame:
    """The clients' records the failover analysis joins with the log, one per logged request."""
    log = read_access_log(path)
    names = {address: name for name, address, _ in PEERS}
    return pd.DataFrame({
        "time": log["msec"] - log["request_time"], "client": log["remote_addr"],
        "instance": log["upstream_addrs"].map(lambda a: names.get(a[-1], "")), "status": log["status"],
        "latency_ms": log["request_time"] * 1000, "name": "/api/count", "error": "",
    })  # fmt: skip


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def per_line_reference(path: Path) -> None:
    """The per-line parse the column-wise one replaced: every line split, every attempt a dict."""
    rows = []
    for text in path.read_text().splitlines():
        values = dict(zip(COLUMNS, text.split("\t"), strict=False))
        addresses = values["upstream_addr"].split(", ")
        statuses = values["upstream_status"].split(", ")
        spent = [float(v) for v in values["upstream_response_time"].split(", ")]
        begun = float(values["msec"]) - float(values["request_time"])
        for index, address in enumerate(addresses):
            rows.append({"start": begun + sum(spent[:index]), "end": begun + sum(spent[: index + 1]),
                         "address": address, "status": statuses[index], "try": index})  # fmt: skip
    pd.DataFrame(rows)


def replay_figures(folder: Path, records: int) -> dict[str, dict[str, float | str]]:
    figures: dict[str, dict[str, float | str]] = {}
    for algorithm in OPTIONS:
        path = folder / f"{algorithm}.log"
        config = load_config(write_config(folder, algorithm))
        write_picks(path, algorithm, records, weighted=algorithm == "round_robin")
        run = PicksRun(path, [(START_S - 1, instances())], None, 1, False)
        verdicts: list[object] = []
        seconds = timed(lambda: verdicts.extend(replay_run(config, run)))  # noqa: B023
        reference = timed(lambda: pd.read_csv(path, sep="\t", header=None, dtype=str))  # noqa: B023
        figures[algorithm] = {"replay_s": seconds, "read_csv_s": reference, "verdict": str(verdicts[0])[:160]}
    return figures


def failover_figures(folder: Path, lines: int) -> dict[str, float | str]:
    path = folder / "failover.log"
    killed, back = write_failover(path, lines)
    config = load_config(infra_path("nginx", "nginx-health-checks.conf"))
    frame = clients_of(path)
    record = FaultRecord(1, "kill", "kill api-gateway-3", "api-gateway-3", PEERS[2][1], killed - START_S,
                         injected_at=killed, inject_returned_at=killed, rolled_back_at=back)  # fmt: skip
    end = START_S + lines / (PER_MS * 1000)
    run = FaultRun([record], frame, frame[frame["time"] < killed], end, "GET", path, 1, False, "health_checks")
    watch = PassiveFailover(passive_checks(config))
    analysis: list[object] = []
    return {
        "analysis_s": timed(lambda: analysis.append(watch.analyze(run))),
        "parse_s": timed(lambda: read_attempts(path)),
        "read_csv_s": timed(lambda: pd.read_csv(path, sep="\t", header=None, dtype=str)),
        "per_line_reference_s": timed(lambda: per_line_reference(path)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--failover-lines", type=int, default=190_000)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as folder:
        for index in range(args.runs):
            runs.append({"replay": replay_figures(Path(folder), args.records),
                         "failover": failover_figures(Path(folder), args.failover_lines),
                         "load_average": os.getloadavg()[0]})  # fmt: skip
            print(f"run {index + 1} of {args.runs} done", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(runs, indent=2))
    print(f"median of {args.runs} runs; {args.records:,} picks per algorithm, {args.failover_lines:,} log lines")
    print(f"{'figure':<34}{'seconds':>9}{'read_csv':>10}{'ratio':>8}")
    for algorithm in OPTIONS:
        seconds = statistics.median(float(run["replay"][algorithm]["replay_s"]) for run in runs)  # type: ignore[index]
        reference = statistics.median(float(run["replay"][algorithm]["read_csv_s"]) for run in runs)  # type: ignore[index]
        print(f"{'replay ' + algorithm:<34}{seconds:>9.2f}{reference:>10.2f}{seconds / reference:>8.1f}")
    failover = {key: statistics.median(float(run["failover"][key]) for run in runs)  # type: ignore[index]
                for key in ("analysis_s", "parse_s", "read_csv_s", "per_line_reference_s")}  # fmt: skip
    print(f"{'failover analysis':<34}{failover['analysis_s']:>9.2f}{failover['read_csv_s']:>10.2f}"
          f"{failover['analysis_s'] / failover['read_csv_s']:>8.1f}")  # fmt: skip
    print(f"{'  of which log parse + attempts':<34}{failover['parse_s']:>9.2f}")
    print(f"{'  per-line parse it replaced':<34}{failover['per_line_reference_s']:>9.2f}")
    for algorithm in OPTIONS:
        print(f"{algorithm}: {runs[-1]['replay'][algorithm]['verdict']}")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
