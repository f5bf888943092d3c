"""The same algorithm and scenario on every balancer, side by side, saved with the runs.

Two tables: the failover numbers per fault (the seed's "passive checks: some user
requests will fail before marking down; active checks: proactive" as measured rows), and
the latency clients saw on each, whose difference between a server-side balancer and
client-side balancing is the cost of the extra hop, measured in the same invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from harness.algorithms import ALGORITHMS, BALANCERS
from harness.balancers.registry import KINDS
from harness.bench import BenchResult, bench
from harness.checks.fault_rows import FailoverRow, percentile
from harness.checks.replay import agreement
from harness.checks.verdict import Verdict
from harness.errors import SpecError
from harness.load.workload import Workload
from harness.results.store import new_run_dir, write_json, write_requests
from harness.run import Reporter
from harness.scenarios.model import load_scenario
from harness.spec import BenchSpec

CLIENT_SIDE = "client"


@dataclass(frozen=True)
class Metric:
    name: str
    value: Callable[[FailoverRow], object]


# One row each in the comparison; the first two are the seed's claim about passive and
# active checks ("some user requests will fail before marking down" against "proactive").
METRICS = (
    Metric("user requests that reached the failed instance", lambda r: r.attempts_on_instance),
    Metric("client-visible errors", lambda r: r.client_errors),
    Metric("requests retried on another instance", lambda r: r.retried_elsewhere),
    Metric("time to detect (s)", lambda r: r.time_to_eject_s),
    Metric("time to recover after the rollback (s)", lambda r: r.time_to_recover_s),
    Metric("latency p99 in the fault window (ms)", lambda r: r.p99_window_ms),
    Metric("latency p99 steady (ms)", lambda r: r.p99_steady_ms),
)


@dataclass(frozen=True)
class LatencyRow:
    """What clients saw on one balancer: successful requests, their rate and latency."""

    balancer: str
    requests: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    extra_hop_p50_ms: float | None  # p50 here minus client-side balancing's p50 in the same invocation
    picks_as_predicted: str = "-"  # the replay's agreement with the algorithm's model


@dataclass(frozen=True)
class GrpcRow:
    """Where one balancer sent the calls of gRPC connections: the probe's one connection, the load's."""

    balancer: str
    one_connection: str  # "3 of 3 instances"
    under_load: str  # "10 connections: 10 on 3 instances"
    verdict: str  # what it does, and whether that is what its config says


def _grpc_row(balancer: str, verdicts: list[Verdict]) -> GrpcRow | None:
    probe = next((v for v in verdicts if "calls of one HTTP/2 connection" in v.check), None)
    if probe is None:
        return None
    reached, instances = probe.observed.get("reached", []), probe.observed.get("instances", 0)
    pinned = next((v for v in verdicts if "calls of each HTTP/2 connection" in v.check), None)
    histogram = (pinned.observed.get("by_instances") if pinned else probe.observed.get("load_by_instances")) or {}
    connections = sum(histogram.values())
    spread = ", ".join(f"{count} on {k} instance{'s' if int(k) != 1 else ''}" for k, count in histogram.items())
    does = "pins per connection" if "pins" in probe.check else "spreads per call"
    return GrpcRow(
        balancer, f"{len(reached)} of {instances} instances", f"{connections} connections: {spread or '-'}",
        f"{does}: {probe.status}",
    )  # fmt: skip


def _latency(requests: pd.DataFrame) -> tuple[int, float, float | None, float | None]:
    served = requests[(requests["status"] >= 200) & (requests["status"] < 300)]
    span = float(requests["time"].max() - requests["time"].min()) if len(requests) > 1 else 0.0
    rate = round(len(served) / span, 1) if span > 0 else 0.0
    return len(served), rate, percentile(served["latency_ms"], 0.5), percentile(served["latency_ms"], 0.99)


@dataclass
class Comparison:
    results: dict[str, BenchResult]
    skipped: dict[str, str]  # balancer -> why it did not run
    directory: Path | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results.values())

    def rows(self) -> list[tuple[str, str, dict[str, object]]]:
        """``(fault, metric, {balancer: value})`` for every fault of the first algorithm's scenario."""
        per_balancer = {name: result.results[0].failover for name, result in self.results.items()}
        faults = max(per_balancer.values(), key=len, default=[])
        table = []
        for index, fault in enumerate(faults):
            for metric in METRICS:
                values = {
                    name: metric.value(rows[index]) if index < len(rows) else None
                    for name, rows in per_balancer.items()
                }
                table.append((f"{fault.fault} {fault.instance}", metric.name, values))
        return table

    def grpc(self) -> list[GrpcRow]:
        """Each balancer's HTTP/2 connections (a gRPC or HTTP/2 workload's runs only)."""
        rows = (_grpc_row(name, result.results[0].verdicts) for name, result in self.results.items())
        return [row for row in rows if row is not None]

    def latency(self) -> list[LatencyRow]:
        measured = {name: _latency(result.results[0].requests) for name, result in self.results.items()}
        direct = measured.get(CLIENT_SIDE, (0, 0.0, None, None))[2]
        return [
            LatencyRow(
                balancer=name,
                requests=count,
                requests_per_s=rate,
                p50_ms=p50,
                p99_ms=p99,
                extra_hop_p50_ms=(
                    round(p50 - direct, 2) if p50 is not None and direct is not None and name != CLIENT_SIDE else None
                ),
                picks_as_predicted=agreement(self.results[name].results[0].verdicts),
            )
            for name, (count, rate, p50, p99) in measured.items()
        ]

    def save(self, directory: Path) -> Path:
        """Writes ``failover.csv``, ``latency.csv`` and ``comparison.json`` into ``directory``."""
        self.directory = directory
        failover = [
            {"fault": fault, "measure": metric, **{name: value for name, value in values.items()}}
            for fault, metric, values in self.rows()
        ]
        if failover:
            write_requests(pd.DataFrame(failover), directory / "failover.csv")
        latency = [asdict(row) for row in self.latency()]
        write_requests(pd.DataFrame(latency), directory / "latency.csv")
        write_json(
            directory / "comparison.json",
            {
                "passed": self.passed,
                "runs": {name: str(result.run_dir) for name, result in self.results.items()},
                "skipped": self.skipped,
                "latency": latency,
                "failover": failover,
            },
        )
        return directory


def _algorithm(spec: BenchSpec) -> str:
    if spec.algorithms:
        return spec.algorithms[0]
    if spec.scenario:
        algorithm = load_scenario(spec.scenario).algorithm
        if algorithm:
            return algorithm
    raise SpecError("compare-balancers needs an algorithm: give --algo NAME or a scenario that names one")


def _workload(spec: BenchSpec) -> Workload:
    """The workload the runs will drive: --workload's, else the scenario's."""
    if spec.workload.chosen or not spec.scenario:
        return spec.workload
    return load_scenario(spec.scenario).workload or spec.workload


def _no_h2_config(algorithm: str, grpc: bool) -> dict[str, str]:
    """Each balancer with no shipped config that passes gRPC (``grpc``) or takes plain HTTP/2 with
    ``algorithm``, and why."""
    what = "passes gRPC" if grpc else "takes HTTP/2"
    return {
        name: f"no shipped config {what} with {algorithm}"
        for name, kind in KINDS.items()
        if algorithm not in (kind.shipped_grpc if grpc else kind.shipped_http2)
    }


def compare_balancers(spec: BenchSpec, reporter: Reporter | None = None) -> Comparison:
    """Runs ``spec`` once per balancer that ships a config for its algorithm; saves the tables."""
    algorithm = ALGORITHMS.get(_algorithm(spec))
    if algorithm is None:
        raise SpecError(f"unknown algorithm {_algorithm(spec)!r}")
    spec = replace(spec, algorithms=(algorithm.name,))
    spec.validate()
    skipped = {name: why for name, why in algorithm.unshipped_because.items() if name in BALANCERS}
    workload = _workload(spec)
    if workload.over_one_connection:
        missing = _no_h2_config(algorithm.name, workload.is_grpc)
        skipped = {name: why for name, why in missing.items() if name in BALANCERS}
    label = f"compare-{algorithm.name}" + (f"-{Path(spec.scenario).stem}" if spec.scenario else "")
    directory = new_run_dir(spec.results_dir, label)
    results = {
        name: bench(replace(spec, balancer=name, results_dir=directory), reporter)
        for name in BALANCERS
        if name not in skipped
    }
    comparison = Comparison(results, skipped)
    comparison.save(directory)
    return comparison
