"""The same algorithm and scenario on every balancer, side by side."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.algorithms import BALANCERS
from harness.bench import BenchResult, bench
from harness.checks.failover import FailoverRow
from harness.run import Reporter
from harness.spec import BenchSpec


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


@dataclass
class Comparison:
    results: dict[str, BenchResult]

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


def compare_balancers(spec: BenchSpec, reporter: Reporter | None = None) -> Comparison:
    """Runs ``spec`` once per balancer (one algorithm, usually with a scenario)."""
    return Comparison({name: bench(replace(spec, balancer=name), reporter) for name in BALANCERS})
