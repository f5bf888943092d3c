"""``harness matrix``: every algorithm on every balancer (and, on request, every scenario), one table.

Each cell of the matrix is an ordinary bench run kept in the matrix's directory; the table
is written as ``matrix.csv`` and ``matrix.html`` next to them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from harness.algorithms import ALGORITHMS, BALANCERS, algorithms_for
from harness.bench import bench
from harness.checks.replay import agreement
from harness.reports import latency
from harness.reports.matrix_page import write_matrix_page
from harness.results.statuses import failed_status
from harness.results.store import new_run_dir, write_requests
from harness.run import AlgorithmResult, Reporter
from harness.scenarios.model import load_scenario, shipped_scenarios
from harness.spec import BenchSpec


@dataclass(frozen=True)
class MatrixRow:
    balancer: str
    algorithm: str
    scenario: str
    requests: int
    requests_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    distribution_error_points: float | None  # the largest gap between an instance's share and its expected share
    verdicts_passed: int
    verdicts_failed: int
    client_errors: int
    eject_s: float | None  # the slowest fault's time to eject, under a scenario
    recover_s: float | None
    run_dir: str
    picks_as_predicted: str = "-"  # the replay's agreement with the algorithm's model


def matrix_row(balancer: str, scenario: str, result: AlgorithmResult) -> MatrixRow:
    requests = result.requests
    span = float(requests["time"].max() - requests["time"].min()) if len(requests) > 1 else 0.0
    values = latency.percentiles(requests["latency_ms"], (50.0, 95.0, 99.0))
    gaps = [abs(row.share - row.expected_share) * 100 for row in result.rows if row.expected_share is not None]
    failed = failed_status(requests["status"])
    ejects = [row.time_to_eject_s for row in result.failover if row.time_to_eject_s is not None]
    recovers = [row.time_to_recover_s for row in result.failover if row.time_to_recover_s is not None]
    return MatrixRow(
        balancer=balancer,
        algorithm=result.algorithm,
        scenario=scenario,
        requests=len(requests),
        requests_per_s=round(len(requests) / span, 1) if span else 0.0,
        p50_ms=values["p50"],
        p95_ms=values["p95"],
        p99_ms=values["p99"],
        distribution_error_points=round(max(gaps), 2) if gaps else None,
        verdicts_passed=sum(1 for v in result.verdicts if v.passed is True),
        verdicts_failed=sum(1 for v in result.verdicts if v.passed is False),
        client_errors=int(failed.sum()),
        eject_s=max(ejects) if ejects else None,
        recover_s=max(recovers) if recovers else None,
        run_dir=str(result.run_dir),
        picks_as_predicted=agreement(result.verdicts),
    )


@dataclass
class Matrix:
    directory: Path
    rows: list[MatrixRow]

    @property
    def passed(self) -> bool:
        return all(row.verdicts_failed == 0 for row in self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(row) for row in self.rows])

    def save(self) -> tuple[Path, Path]:
        csv = write_requests(self.frame(), self.directory / "matrix.csv")
        html = write_matrix_page(self.directory / "matrix.html", self.directory.name, [asdict(r) for r in self.rows])
        return csv, html


def run_matrix(spec: BenchSpec, with_scenarios: bool = False, reporter: Reporter | None = None) -> Matrix:
    """Runs every algorithm with a shipped config on every balancer; with scenarios, each of
    those too (on the balancers that ship a config for the scenario's algorithm)."""
    directory = new_run_dir(spec.results_dir, "matrix")
    rows: list[MatrixRow] = []
    for balancer in BALANCERS:
        cell = replace(spec, balancer=balancer, algorithms=algorithms_for(balancer), results_dir=directory)
        rows += [matrix_row(balancer, "", result) for result in bench(cell, reporter).results]
    if with_scenarios:
        for name in shipped_scenarios():
            algorithm = load_scenario(name).algorithm or "health_checks"
            for balancer in BALANCERS:
                if not ALGORITHMS[algorithm].shipped_for(balancer):
                    continue
                cell = replace(spec, balancer=balancer, algorithms=(), scenario=name, results_dir=directory)
                rows += [matrix_row(balancer, name, result) for result in bench(cell, reporter).results]
    matrix = Matrix(directory, rows)
    matrix.save()
    return matrix
