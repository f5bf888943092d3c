"""Walking-skeleton benchmarks: real nginx over real backend instances, measured end to end.

Figures (each the median of ``--runs`` runs; the bench wall time of ``--bench-runs``):

a. bring-up: from ``LocalProcessRuntime.start`` through ``NginxBalancer.start`` until every
   instance has answered through nginx (``probes.serve_through``), for 3 and for 50 backends,
   with the shipped round-robin config;
b. throughput: ``wrk`` through nginx (keepalive config, 3 backends), with two references
   measured in the same run: ``wrk`` straight at one backend, and ``wrk`` at nginx answering
   ``return 200`` itself;
c. memory of each backend instance after the through-nginx load: VmRSS and PSS;
d. wall time of ``harness bench --algo all`` with its defaults.

Usage: ``python benchmarks/walking_skeleton.py [--runs 5] [--bench-runs 3] [--quick]``.
Every process the script starts is stopped by its pid; all traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.balancer import NginxBalancer, nginx_binary, nginx_version
from harness.balancers.nginx.config import load_config
from harness.load import probes
from harness.net import LOOPBACK, accepts_connections, free_port
from harness.processes import spawn, terminate
from harness.readiness import WaitStrategy, tail
from harness.runtimes.local import LocalProcessRuntime
from harness.topology import plan_instances

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(__file__).resolve().parent
KEEPALIVE_CONFIG = BENCHMARKS / "nginx-keepalive.conf"
DEFAULT_OUTPUT = BENCHMARKS / "results" / "walking_skeleton.json"

NGINX_WORKERS = 1  # the harness's default worker_processes (NginxBalancer(workers=1))
WRK_THREADS = 2
WRK_CONNECTIONS = 64
WRK_DURATION_S = 5
THROUGHPUT_BACKENDS = 3
BENCH_TIMEOUT_S = 600.0

TARGETS: dict[str, tuple[str, float]] = {
    "bring_up_3_s": ("<=", 0.5),
    "bring_up_50_s": ("<=", 6.0),
    "through_nginx_rps": (">=", 15_000.0),
    "backend_rss_max_mb": ("<=", 40.0),
    "bench_all_s": ("<", 60.0),
}

# nginx answering by itself: the same nginx binary, one worker and an access log per request,
# as the balancer's rendered config has, so the only difference is the proxying to backends.
RETURN_200_CONFIG = """\
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/temp/client_body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;

    server {{
        listen {listen};

        location / {{
            default_type application/json;
            return 200 '{{"instance": "nginx", "count": 1}}';
        }}
    }}
}}
"""


# --- wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    url: str
    requests_per_s: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "requests_per_s": self.requests_per_s,
            "requests": self.requests,
            "non_2xx_3xx": self.non_2xx_3xx,
            "socket_errors": self.socket_errors,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
        }


_LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str, percentile: str) -> float | None:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _LATENCY_UNITS_MS[match.group(2)] if match else None


def parse_wrk(url: str, output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec line for {url}:\n{output}")
    total = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        url=url,
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)) if total else 0,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        latency_p50_ms=_latency_ms(output, "50"),
        latency_p99_ms=_latency_ms(output, "99"),
    )


def wrk(url: str) -> WrkResult:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{WRK_DURATION_S}s",
        "--latency",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=WRK_DURATION_S + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode} for {url}: {done.stderr.strip()}")
    return parse_wrk(url, done.stdout)


# --- memory ------------------------------------------------------------------------------


def _proc_kb(path: Path, field_name: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def process_memory_mb(pid: int) -> dict[str, float | None]:
    """VmRSS from /proc/PID/status; PSS and USS (private pages) from smaps_rollup when the kernel has it."""
    rss = _proc_kb(Path(f"/proc/{pid}/status"), "VmRSS")
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    pss = _proc_kb(rollup, "Pss")
    private = [_proc_kb(rollup, name) for name in ("Private_Clean", "Private_Dirty")]
    uss = sum(kb for kb in private if kb is not None) if all(kb is not None for kb in private) else None
    return {name: (kb / 1024 if kb is not None else None) for name, kb in (("rss", rss), ("pss", pss), ("uss", uss))}


# --- figures -----------------------------------------------------------------------------


def bring_up(backends: int) -> dict[str, Any]:
    """Seconds from runtime.start until every instance has answered through nginx (round robin)."""
    config = load_config(shipped_config(ALGORITHMS["round_robin"]))
    specs = plan_instances(config.services, backends)
    with tempfile.TemporaryDirectory(prefix="walking-skeleton-up-") as tmp:
        run_dir = Path(tmp)
        with (
            LocalProcessRuntime(run_dir / "instances") as runtime,
            NginxBalancer(config, run_dir, workers=NGINX_WORKERS) as balancer,
        ):
            started = time.perf_counter()
            instances = runtime.start(specs)
            instances_up = time.perf_counter()
            balancer.start(instances)
            nginx_up = time.perf_counter()
            requests = probes.serve_through(balancer.url, instances)
            served = time.perf_counter()
        stopped = time.perf_counter()
    return {
        "backends": backends,
        "seconds": served - started,
        "instances_s": instances_up - started,
        "nginx_s": nginx_up - instances_up,
        "serve_through_s": served - nginx_up,
        "serve_through_requests": requests,
        "teardown_s": stopped - served,
    }


def nginx_return_200() -> WrkResult:
    """wrk against nginx answering ``return 200`` itself: nginx's own ceiling on this machine."""
    with tempfile.TemporaryDirectory(prefix="walking-skeleton-r200-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "temp").mkdir()
        port = free_port()
        config_path = run_dir / "nginx.conf"
        config_path.write_text(
            RETURN_200_CONFIG.format(workers=NGINX_WORKERS, tmp=run_dir, listen=f"{LOOPBACK}:{port}")
        )
        error_log = run_dir / "error.log"
        command = [nginx_binary(), "-p", str(run_dir), "-c", str(config_path), "-e", str(error_log)]
        process = spawn(command, run_dir / "nginx.stderr.log")
        try:

            def accepting() -> bool | None:
                if process.poll() is not None:
                    raise RuntimeError(f"nginx (return 200) exited with {process.returncode}: {tail(error_log, 3)}")
                return accepts_connections(LOOPBACK, port)

            WaitStrategy(f"nginx (return 200) on {LOOPBACK}:{port}", timeout=10.0, log=error_log).wait(accepting)
            return wrk(f"http://{LOOPBACK}:{port}/api/count")
        finally:
            terminate(process, grace=5.0, signum=signal.SIGQUIT)


def throughput_and_memory() -> dict[str, Any]:
    """wrk through nginx (keepalive) over 3 backends, memory right after it, then wrk at one backend."""
    config = load_config(KEEPALIVE_CONFIG)
    with tempfile.TemporaryDirectory(prefix="walking-skeleton-tp-") as tmp:
        run_dir = Path(tmp)
        with (
            LocalProcessRuntime(run_dir / "instances") as runtime,
            NginxBalancer(config, run_dir, workers=NGINX_WORKERS) as balancer,
        ):
            instances = runtime.start(plan_instances(config.services, THROUGHPUT_BACKENDS))
            balancer.start(instances)
            probes.serve_through(balancer.url, instances)
            through = wrk(f"{balancer.url}/api/count")
            memory = {instance.name: process_memory_mb(instance.pid) for instance in instances}
            direct = wrk(f"http://{instances[0].address}/api/count")
    ceiling = nginx_return_200()

    def over(kind: str, reduce: Callable[[Sequence[float]], float]) -> float | None:
        values = [m[kind] for m in memory.values()]
        return reduce([v for v in values if v is not None]) if all(v is not None for v in values) else None

    return {
        "through_nginx": through.as_dict(),
        "direct_single_backend": direct.as_dict(),
        "nginx_return_200": ceiling.as_dict(),
        "ratio_nginx_over_direct": through.requests_per_s / direct.requests_per_s,
        "ratio_nginx_over_return_200": through.requests_per_s / ceiling.requests_per_s,
        "memory_mb": memory,
        "rss_median_mb": over("rss", statistics.median),
        "rss_max_mb": over("rss", max),
        "pss_median_mb": over("pss", statistics.median),
        "pss_max_mb": over("pss", max),
    }


def bench_all() -> dict[str, Any]:
    """Wall time of ``harness bench --algo all`` with its defaults, results in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="walking-skeleton-bench-") as tmp:
        command = [sys.executable, "-m", "harness.cli.main", "bench", "--algo", "all", "--results-dir", tmp]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, check=False)
        seconds = time.perf_counter() - started
    result: dict[str, Any] = {"seconds": seconds, "exit_code": done.returncode}
    if done.returncode != 0:
        result["output_tail"] = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
    return result


# --- report ------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _met(name: str, value: float | None) -> bool | None:
    if value is None:
        return None
    op, target = TARGETS[name]
    return value <= target if op == "<=" else value >= target if op == ">=" else value < target


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "nginx": nginx_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def summarize(runs: list[dict[str, Any]], bench_runs: list[dict[str, Any]]) -> dict[str, Any]:
    def column(path: Sequence[str]) -> list[float | None]:
        values: list[float | None] = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(value)
        return values

    medians: dict[str, float | None] = {
        "bring_up_3_s": _median(column(["bring_up_3", "seconds"])),
        "bring_up_50_s": _median(column(["bring_up_50", "seconds"])),
        "through_nginx_rps": _median(column(["throughput", "through_nginx", "requests_per_s"])),
        "direct_single_backend_rps": _median(column(["throughput", "direct_single_backend", "requests_per_s"])),
        "nginx_return_200_rps": _median(column(["throughput", "nginx_return_200", "requests_per_s"])),
        "ratio_nginx_over_direct": _median(column(["throughput", "ratio_nginx_over_direct"])),
        "ratio_nginx_over_return_200": _median(column(["throughput", "ratio_nginx_over_return_200"])),
        "through_nginx_p50_ms": _median(column(["throughput", "through_nginx", "latency_p50_ms"])),
        "through_nginx_p99_ms": _median(column(["throughput", "through_nginx", "latency_p99_ms"])),
        "backend_rss_median_mb": _median(column(["throughput", "rss_median_mb"])),
        "backend_rss_max_mb": _median(column(["throughput", "rss_max_mb"])),
        "backend_pss_median_mb": _median(column(["throughput", "pss_median_mb"])),
        "backend_pss_max_mb": _median(column(["throughput", "pss_max_mb"])),
        "bench_all_s": _median([b["seconds"] for b in bench_runs]) if bench_runs else None,
    }
    targets = {
        name: {"target": f"{op} {limit:g}", "median": medians[name], "met": _met(name, medians[name])}
        for name, (op, limit) in TARGETS.items()
    }
    if bench_runs and any(b["exit_code"] != 0 for b in bench_runs):
        targets["bench_all_s"]["met"] = False
        targets["bench_all_s"]["note"] = "harness bench exited non-zero in at least one run"
    errors = sum(
        run["throughput"][kind]["non_2xx_3xx"] + run["throughput"][kind]["socket_errors"]
        for run in runs
        for kind in ("through_nginx", "direct_single_backend", "nginx_return_200")
    )
    return {"medians": medians, "targets": targets, "wrk_errors_total": errors}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(summary: dict[str, Any], runs: int, bench_runs: int) -> None:
    m = summary["medians"]
    t = summary["targets"]

    def verdict(name: str) -> str:
        met = t[name]["met"]
        return "n/a" if met is None else "met" if met else "NOT met"

    rows = [
        ("bring-up, 3 backends (s)", _fmt(m["bring_up_3_s"], ".3f"), runs, "<= 0.5", verdict("bring_up_3_s")),
        ("bring-up, 50 backends (s)", _fmt(m["bring_up_50_s"], ".3f"), runs, "<= 6", verdict("bring_up_50_s")),
        (
            "req/s through nginx (3 backends)",
            _fmt(m["through_nginx_rps"], ",.0f"),
            runs,
            ">= 15,000",
            verdict("through_nginx_rps"),
        ),
        ("req/s direct, one backend", _fmt(m["direct_single_backend_rps"], ",.0f"), runs, "reference", ""),
        ("req/s nginx return 200", _fmt(m["nginx_return_200_rps"], ",.0f"), runs, "reference", ""),
        ("ratio through-nginx / direct", _fmt(m["ratio_nginx_over_direct"], ".2f"), runs, "", ""),
        ("ratio through-nginx / return 200", _fmt(m["ratio_nginx_over_return_200"], ".2f"), runs, "", ""),
        (
            "latency p50 / p99 through nginx (ms)",
            f"{_fmt(m['through_nginx_p50_ms'], '.2f')} / {_fmt(m['through_nginx_p99_ms'], '.2f')}",
            runs,
            "",
            "",
        ),
        (
            "backend RSS median / max (MB)",
            f"{_fmt(m['backend_rss_median_mb'], '.1f')} / {_fmt(m['backend_rss_max_mb'], '.1f')}",
            runs,
            "max <= 40",
            verdict("backend_rss_max_mb"),
        ),
        (
            "backend PSS median / max (MB)",
            f"{_fmt(m['backend_pss_median_mb'], '.1f')} / {_fmt(m['backend_pss_max_mb'], '.1f')}",
            runs,
            "",
            "",
        ),
        (
            "harness bench --algo all (s)",
            _fmt(m["bench_all_s"], ".1f"),
            bench_runs,
            "< 60",
            verdict("bench_all_s") if bench_runs else "skipped",
        ),
    ]
    headers = ("figure (median)", "value", "runs", "target", "status")
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if summary["wrk_errors_total"]:
        print(f"warning: wrk reported {summary['wrk_errors_total']} non-2xx/3xx responses or socket errors in total")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure, the median is reported (default 5)")
    parser.add_argument("--bench-runs", type=int, default=3, help="runs of `harness bench --algo all` (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run of each figure, no `harness bench` (smoke test)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.bench_runs = 1, 0
    if args.runs < 1 or args.bench_runs < 0:
        parser.error("--runs must be >= 1 and --bench-runs >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(
        f"machine: {info['nproc']} cpus, nginx {info['nginx']}, python {info['python']}, "
        f"load average {' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"
    )
    runs: list[dict[str, Any]] = []
    for number in range(1, args.runs + 1):
        run: dict[str, Any] = {
            "loadavg_1min_before": os.getloadavg()[0],
            "bring_up_3": bring_up(3),
            "bring_up_50": bring_up(50),
            "throughput": throughput_and_memory(),
        }
        runs.append(run)
        tp = run["throughput"]
        print(
            f"run {number}/{args.runs}: bring-up 3 {run['bring_up_3']['seconds']:.3f} s, "
            f"50 {run['bring_up_50']['seconds']:.3f} s; req/s through nginx "
            f"{tp['through_nginx']['requests_per_s']:,.0f}, "
            f"direct {tp['direct_single_backend']['requests_per_s']:,.0f}, "
            f"return 200 {tp['nginx_return_200']['requests_per_s']:,.0f}; RSS max {_fmt(tp['rss_max_mb'], '.1f')} MB",
            flush=True,
        )
    bench_runs: list[dict[str, Any]] = []
    for number in range(1, args.bench_runs + 1):
        bench_runs.append({"loadavg_1min_before": os.getloadavg()[0], **bench_all()})
        last = bench_runs[-1]
        print(f"bench {number}/{args.bench_runs}: {last['seconds']:.1f} s, exit code {last['exit_code']}", flush=True)
    summary = summarize(runs, bench_runs)
    print()
    print_table(summary, args.runs, args.bench_runs)
    report = {
        "machine": info,
        "settings": {
            "runs": args.runs,
            "bench_runs": args.bench_runs,
            "quick": args.quick,
            "nginx_workers": NGINX_WORKERS,
            "wrk": f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_DURATION_S}s --latency",
            "throughput_backends": THROUGHPUT_BACKENDS,
            "keepalive_config": str(KEEPALIVE_CONFIG.relative_to(REPO)),
        },
        **summary,
        "runs": runs,
        "bench_runs": bench_runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ignore = args.output.parent / ".gitignore"
    if args.output.parent == DEFAULT_OUTPUT.parent and not ignore.exists():
        ignore.write_text("*\n!.gitignore\n")
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
