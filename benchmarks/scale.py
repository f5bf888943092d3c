"""Past three instances and a short run: bring-up of 250 and 1,000 instances, requests/s from
1, 2 and 3 load hosts against one nginx, and the analysis of 100,000 and
1,000,000 records.

- **bring-up**: ``LocalProcessRuntime.start`` of N instances (forked from one launcher that
  has imported the backend, so they share its pages), nginx started over them (the shipped
  round-robin config), until ``probes.serve_through`` has seen every instance answer through
  it. Then each instance's PSS (``/proc/PID/smaps_rollup``), median and max.
- **load**: ``harness bench --algo round_robin`` (the library call) over 3 instances for
  ``--duration`` s with 60 users, from Locust in the harness's own process (the reference) and
  then from 1, 2 and 3 load hosts (``--load-hosts``: network namespaces, a Locust worker each,
  on Locust's distributed mode); requests/s is the requests the clients recorded over the
  load's length, and the ratios are to one host and to the in-process load of the same round.
  The simulated hosts share this machine's 2 cores with nginx and the instances.
- **analysis**: a round-robin log of N requests in the harness's access-log format in which one
  of three instances is killed and started again (``replay.write_failover``), with the clients'
  records of the same requests in a Parquet file. A fresh process reads the records and runs
  the whole failover analysis (``PassiveFailover.analyze``: the log parsed, its attempts, every
  fault's numbers and verdicts), then the log parse alone (``read_attempts``); its peak RSS is
  read from ``VmHWM`` and the RSS after its imports is given beside it. Reference, same
  run: pandas' C reader of the same file (``pd.read_csv``).

Figures are medians of ``--runs`` runs. Usage: ``python benchmarks/scale.py [--runs 3]
[--sizes 250,1000] [--records 100000,1000000] [--duration 8] [--only bring-up,load,analysis]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "scale.json"


def pss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for row in text.splitlines():
        if row.startswith("Pss:"):
            return int(row.split()[1]) / 1024
    return None


def high_water_mb() -> float:
    """This process's peak RSS (``VmHWM``). Not ``getrusage``: its ``ru_maxrss`` keeps the peak
    of the process that forked this one, which is larger than this one's."""
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def bring_up(count: int) -> dict[str, Any]:
    from harness.algorithms import ALGORITHMS, shipped_config
    from harness.balancers.nginx.balancer import NginxBalancer
    from harness.balancers.nginx.config import load_config
    from harness.load import probes
    from harness.runtimes.local import LocalProcessRuntime
    from harness.topology import plan_instances

    config = load_config(shipped_config(ALGORITHMS["round_robin"]))
    specs = plan_instances(config.services, count)
    with tempfile.TemporaryDirectory(prefix="scale-up-") as tmp:
        run_dir = Path(tmp)
        with LocalProcessRuntime(run_dir / "instances") as runtime, NginxBalancer(config, run_dir) as balancer:
            started = time.perf_counter()
            instances = runtime.start(specs)
            instances_up = time.perf_counter()
            balancer.start(instances)
            balancer_up = time.perf_counter()
            probes.serve_through(balancer.url, instances, max_requests=4 * count)
            served = time.perf_counter()
            pss = [value for value in (pss_mb(instance.pid) for instance in instances) if value is not None]
    return {
        "instances": count, "seconds": served - started, "instances_s": instances_up - started,
        "balancer_s": balancer_up - instances_up, "served_s": served - balancer_up,
        "pss_median_mb": statistics.median(pss), "pss_max_mb": max(pss), "pss_total_mb": sum(pss),
    }  # fmt: skip


def load(hosts: int, duration: float) -> dict[str, Any]:
    """requests/s of a bench whose load comes from ``hosts`` load hosts (0: the harness's process)."""
    from harness.bench import bench
    from harness.spec import BenchSpec

    with tempfile.TemporaryDirectory(prefix="scale-load-") as tmp:
        spec = BenchSpec(
            algorithms=("round_robin",), duration=duration, users=60, load_hosts=hosts, results_dir=Path(tmp)
        )
        result = bench(spec).results[0]
    requests = len(result.requests)
    return {"load_hosts": hosts, "requests": requests, "requests_per_s": requests / duration,
            "passed": result.passed}  # fmt: skip


def analysis_child(folder: Path) -> dict[str, Any]:
    """Runs in a fresh process: the failover analysis of the log and records in ``folder``."""
    import pandas as pd

    from harness.balancers.kind import FaultRun
    from harness.balancers.nginx.access_log import read_attempts
    from harness.balancers.nginx.config import load_config
    from harness.balancers.nginx.failover import PassiveFailover
    from harness.balancers.nginx.health import passive_checks
    from harness.infra import infra_path
    from harness.results.faults import FaultRecord
    from harness.results.store import read_records

    after_imports = high_water_mb()
    meta = json.loads((folder / "meta.json").read_text())
    path = folder / "failover.log"
    started = time.perf_counter()
    frame = read_records(folder)
    killed, back = meta["killed"], meta["back"]
    record = FaultRecord(1, "kill", "kill api-gateway-3", "api-gateway-3", meta["dead"], killed - meta["start"],
                         injected_at=killed, inject_returned_at=killed, rolled_back_at=back)  # fmt: skip
    run = FaultRun([record], frame, frame[frame["time"] < killed], meta["end"], "GET", path, 1, False, "health_checks")
    verdicts, _ = PassiveFailover(passive_checks(load_config(infra_path("nginx", "nginx-health-checks.conf")))).analyze(
        run
    )
    analysis = time.perf_counter() - started
    peak = high_water_mb()
    started = time.perf_counter()
    read_attempts(path)
    parse = time.perf_counter() - started
    started = time.perf_counter()
    pd.read_csv(path, sep="\t", header=None, dtype=str)
    reference = time.perf_counter() - started
    return {
        "analysis_s": analysis, "parse_s": parse, "read_csv_s": reference, "rss_after_imports_mb": after_imports,
        "peak_rss_mb": peak, "verdicts": [f"{'PASS' if v.passed else 'FAIL'} {v.check}" for v in verdicts],
    }  # fmt: skip


def analysis(records: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import replay

    from harness.results.store import RECORDS_FILE, write_records

    with tempfile.TemporaryDirectory(prefix="scale-analysis-") as tmp:
        folder = Path(tmp)
        killed, back = replay.write_failover(folder / "failover.log", records)
        write_records(replay.clients_of(folder / "failover.log"), folder / RECORDS_FILE)
        end = replay.START_S + records / (replay.PER_MS * 1000)
        meta = {"killed": killed, "back": back, "start": replay.START_S, "end": end, "dead": replay.PEERS[2][1]}
        (folder / "meta.json").write_text(json.dumps(meta))
        child = subprocess.run(
            [sys.executable, __file__, "--analysis-child", str(folder)], capture_output=True, text=True, check=False
        )
        if child.returncode != 0:
            raise RuntimeError(child.stderr[-2000:])
        figures: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    figures["records"] = records
    return figures


def ratio_of(rounds: Sequence[Sequence[dict[str, Any]]], index: int, base: int) -> float:
    """The median over rounds of figure ``index``'s requests/s over figure ``base``'s, same round."""
    return statistics.median(round_[index]["requests_per_s"] / round_[base]["requests_per_s"] for round_ in rounds)


def median_of(runs: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="250,1000")
    parser.add_argument("--records", default="100000,1000000")
    parser.add_argument("--hosts", default="0,1,2,3", help="load hosts per figure; 0: the in-process reference")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--only", default="bring-up,load,analysis")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--analysis-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.analysis_child:
        print(json.dumps(analysis_child(args.analysis_child)))
        return 0
    parts = set(args.only.split(","))
    raw: dict[str, Any] = {"bring_up": {}, "load": {}, "analysis": {}}
    if "bring-up" in parts:
        for count in (int(value) for value in args.sizes.split(",")):
            runs = [bring_up(count) for _ in range(args.runs)]
            raw["bring_up"][count] = runs
            print(f"bring-up, {count} instances: {median_of(runs, 'seconds'):.2f} s "
                  f"(instances {median_of(runs, 'instances_s'):.2f} s, nginx {median_of(runs, 'balancer_s'):.2f} s, "
                  f"every instance through nginx {median_of(runs, 'served_s'):.2f} s); PSS per instance median "
                  f"{median_of(runs, 'pss_median_mb'):.1f} MB, max {median_of(runs, 'pss_max_mb'):.1f} MB",
                  flush=True)  # fmt: skip
    if "load" in parts:
        counts = [int(value) for value in args.hosts.split(",")]
        rounds = [[load(hosts, args.duration) for hosts in counts] for _ in range(args.runs)]
        for index, hosts in enumerate(counts):
            runs = [round_[index] for round_ in rounds]
            raw["load"][hosts] = runs
            ratios = "".join(
                f", {ratio_of(rounds, index, counts.index(base)):.2f}x {label}"
                for base, label in ((1, "one host"), (0, "in-process"))
                if base in counts
            )
            where = f"{hosts} load host(s)" if hosts else "Locust in the harness's process"
            print(f"load, {where}: {median_of(runs, 'requests_per_s'):,.0f} requests/s{ratios}; passed "
                  f"{sum(run['passed'] for run in runs)}/{len(runs)}", flush=True)  # fmt: skip
    if "analysis" in parts:
        for records in (int(value) for value in args.records.split(",")):
            runs = [analysis(records) for _ in range(args.runs)]
            raw["analysis"][records] = runs
            print(f"analysis, {records:,} records: whole failover analysis {median_of(runs, 'analysis_s'):.2f} s, "
                  f"log parse {median_of(runs, 'parse_s'):.2f} s (read_csv {median_of(runs, 'read_csv_s'):.2f} s), "
                  f"peak RSS {median_of(runs, 'peak_rss_mb'):.0f} MB (after imports "
                  f"{median_of(runs, 'rss_after_imports_mb'):.0f} MB)",
                  flush=True)  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
