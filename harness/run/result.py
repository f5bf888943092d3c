"""What one algorithm's run found, as the front ends read it and as ``summary.json`` keeps it."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.balancers import factory
from harness.checks.distribution import counts_of
from harness.checks.fault_rows import FailoverRow
from harness.checks.verdict import Verdict
from harness.results.store import RECORDS_FILE, write_json, write_records, write_requests
from harness.run.context import RunContext
from harness.runtimes.base import Instance


@dataclass(frozen=True)
class InstanceRow:
    instance: str
    address: str
    requests: int
    share: float
    expected_share: float | None


@dataclass
class AlgorithmResult:
    algorithm: str
    config: Path
    run_dir: Path
    instances: list[Instance]
    requests: pd.DataFrame
    rows: list[InstanceRow]
    verdicts: list[Verdict]
    timings: dict[str, float] = field(default_factory=dict)
    locust_request_count: int = 0
    failover: list[FailoverRow] = field(default_factory=list)
    load_model: dict[str, Any] = field(default_factory=dict)  # closed (Locust users) or open (a fixed rate)
    notes: list[str] = field(default_factory=list)  # what the run read in the config, where its load went

    @property
    def passed(self) -> bool:
        return not any(verdict.failed for verdict in self.verdicts)


@dataclass
class Measured:
    """What a run's measurement (steady state or a fault scenario) found."""

    verdicts: list[Verdict]
    requests: pd.DataFrame
    request_count: int  # as the load counted them
    counts: dict[str, int] | None = None  # per instance, from a load without per-request records (wrk)
    failover: list[FailoverRow] = field(default_factory=list)  # per fault, under a scenario


def instance_rows(
    context: RunContext, instances: list[Instance], frame: pd.DataFrame, counts: dict[str, int] | None = None
) -> list[InstanceRow]:
    """Requests and share per instance; ``counts`` when the load kept no per-request record (wrk)."""
    if counts is None:
        counts = counts_of(frame.loc[frame["instance"] != "", "instance"].tolist())
    total = max(sum(counts.values()), 1)
    # Under a scenario the instances and their shares change with the faults: no expected share.
    expected = (context.expected_shares(instances) if context.scenario is None else None) or {}
    return [
        InstanceRow(
            instance=instance.name,
            address=instance.address,
            requests=int(counts.get(instance.name, 0)),
            share=int(counts.get(instance.name, 0)) / total,
            expected_share=expected.get(instance.name) if expected else None,
        )
        for instance in instances
    ]


@dataclass(frozen=True)
class RunFacts:
    """What the summary says about the run besides the result: its balancer's generated config and version."""

    generated_config: Path | None
    balancer_version: str | None = None  # as the balancer reported it (nginx in a pod); None: looked up by binary


def write_result(context: RunContext, result: AlgorithmResult, facts: RunFacts) -> None:
    write_records(result.requests, context.run_dir / RECORDS_FILE)
    if result.failover:
        write_requests(pd.DataFrame([row.as_dict() for row in result.failover]), context.run_dir / "failover.csv")
    write_json(context.run_dir / "summary.json", summary(context, result, facts))


def write_partial(context: RunContext, result: AlgorithmResult, facts: RunFacts, exc: BaseException) -> None:
    """What an interrupted run had measured, with a summary that says it is incomplete."""
    reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    write_records(result.requests, context.run_dir / RECORDS_FILE)
    partial = summary(context, result, facts)
    partial.update(complete=False, passed=False, interrupted=reason)
    write_json(context.run_dir / "summary.json", partial)


def summary(context: RunContext, result: AlgorithmResult, facts: RunFacts) -> dict[str, Any]:
    spec, scenario = context.spec, context.scenario
    return {
        "algorithm": result.algorithm,
        "claim": context.algorithm.claim,
        "config": str(result.config),
        "balancer": context.config.balancer,
        "generated_config": str(facts.generated_config),
        "passed": result.passed,
        "complete": True,
        "spec": {
            "backends": len(result.instances),
            "users": spec.users,
            "duration_s": scenario.duration if scenario else spec.duration,
            "workers": context.workers,
            "zone": context.zone,
            "weights": context.weights_by_instance,
        },
        "versions": tool_versions(context.config.balancer, facts.balancer_version),
        "counts": {
            "requests": len(result.requests),
            "locust_requests": result.locust_request_count,
            "per_instance": {row.instance: row.requests for row in result.rows},
        },
        "instances": [row.__dict__ for row in result.rows],
        "timings_s": {key: round(value, 3) for key, value in result.timings.items()},
        "scenario": None if scenario is None else str(scenario.path),
        "load_model": result.load_model,
        "notes": result.notes,
        "failover": [row.as_dict() for row in result.failover],
        "verdicts": [verdict.as_dict() for verdict in result.verdicts],
    }


_versions: dict[str, dict[str, str]] = {}


def tool_versions(balancer: str, balancer_version: str | None = None) -> dict[str, str]:
    """The versions a run's results depend on, looked up once per process; ``balancer_version``
    when the balancer reported its own (nginx in a cluster's pod)."""
    key = balancer if balancer_version is None else f"{balancer} {balancer_version}"
    if key not in _versions:
        import locust

        from harness import __version__

        _versions[key] = {
            "harness": __version__,
            balancer: balancer_version or factory.version(balancer),
            "locust": str(locust.__version__),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
        }
    return dict(_versions[key])
