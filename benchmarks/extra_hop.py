"""The cost of the extra hop: latency through a balancer against clients that pick instances themselves.

Each run is one ``harness compare-balancers --algo round_robin`` (the library call behind
it): the same Locust load (10 users, closed model, ``--duration`` seconds) against 3
instances through nginx, through HAProxy, and with client-side round robin, one after the
other in the same process. The client-side run is the reference: the same clients and
instances with no hop between them. The script prints, per balancer, the median over runs
of p50, p99 and requests/s, and the median of the per-run differences and ratios against
the client-side run.

Usage: ``python benchmarks/extra_hop.py [--runs 5] [--duration 5]``.
Everything runs on 127.0.0.0/8; every process is stopped by pid when each run ends.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)

from harness.compare import CLIENT_SIDE, compare_balancers
from harness.spec import BenchSpec

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "extra_hop.json"


def one_run(duration: float) -> dict[str, dict[str, float | None]]:
    with tempfile.TemporaryDirectory(prefix="extra-hop-") as results:
        comparison = compare_balancers(BenchSpec(("round_robin",), duration=duration, results_dir=Path(results)))
        if not comparison.passed:
            raise SystemExit("a round-robin check failed; the latencies would not compare like with like")
        return {
            row.balancer: {"p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "requests_per_s": row.requests_per_s}
            for row in comparison.latency()
        }


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 2) if present else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    runs = []
    for index in range(args.runs):
        started = time.time()
        run = one_run(args.duration)
        runs.append({"loadavg_1m": os.getloadavg()[0], "started": started, "balancers": run})
        print(f"run {index + 1}/{args.runs}: " + ", ".join(f"{b} p50 {v['p50_ms']} ms" for b, v in run.items()))
    balancers = list(runs[0]["balancers"])
    print(f"\nmedian of {args.runs} runs, {args.duration:g} s of load each, 10 users, 3 instances, round robin")
    print(f"{'balancer':<10}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}{'p50 - direct':>14}{'p50 / direct':>14}")
    summary: dict[str, dict[str, float | None]] = {}
    for balancer in balancers:
        per_run = [run["balancers"][balancer] for run in runs]
        direct = [run["balancers"][CLIENT_SIDE] for run in runs]
        extra = [
            (mine["p50_ms"] - ref["p50_ms"]) if mine["p50_ms"] is not None and ref["p50_ms"] is not None else None
            for mine, ref in zip(per_run, direct, strict=True)
        ]
        ratio = [
            (mine["p50_ms"] / ref["p50_ms"]) if mine["p50_ms"] and ref["p50_ms"] else None
            for mine, ref in zip(per_run, direct, strict=True)
        ]
        summary[balancer] = {
            "p50_ms": median([r["p50_ms"] for r in per_run]),
            "p99_ms": median([r["p99_ms"] for r in per_run]),
            "requests_per_s": median([r["requests_per_s"] for r in per_run]),
            "extra_hop_p50_ms": median(extra),
            "p50_ratio_to_direct": median(ratio),
        }
        row = summary[balancer]
        print(
            f"{balancer:<10}{row['p50_ms']!s:>9}{row['p99_ms']!s:>9}{row['requests_per_s']!s:>10}"
            f"{row['extra_hop_p50_ms']!s:>14}{row['p50_ratio_to_direct']!s:>14}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": runs, "median": summary}, indent=2) + "\n")
    print(f"raw runs in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
