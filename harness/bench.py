"""``harness bench`` as a library call: every requested algorithm, one after another."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.base import BalancerConfig
from harness.balancers.factory import check_installed, load_balancer_config
from harness.balancers.registry import DEFAULT_BALANCER
from harness.errors import SpecError
from harness.reports.report import write_report
from harness.results.store import new_run_dir, write_json
from harness.run import AlgorithmResult, AlgorithmRun, Reporter
from harness.runtimes.factory import check_reachable
from harness.scenarios.model import Scenario, load_scenario
from harness.spec import BenchSpec


@dataclass
class BenchResult:
    run_dir: Path
    results: list[AlgorithmResult]
    report: Path | None = None  # report.html of the run

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


def resolve_configs(spec: BenchSpec, scenario: Scenario | None = None) -> list[tuple[str, BalancerConfig]]:
    """Each algorithm with the config it runs against; all parsed before anything starts.

    Without --algo the algorithm comes from the scenario, else from the config's upstream.
    """
    default = scenario.algorithm if scenario is not None else None
    if spec.config is not None:
        plan = []
        for upstream in upstreams_to_judge(spec):
            config = load_balancer_config(spec.balancer, spec.config, upstream, spec.route)
            claimed = claims_config(spec, upstream) or config
            algorithm = spec.algorithms[0] if spec.algorithms else default or claimed.inferred_algorithm()
            if algorithm not in ALGORITHMS:
                raise SpecError(f"{spec.config} uses `{algorithm}`; pass --algo to say which behaviour to check")
            plan.append((algorithm, config))
        return plan
    names = spec.algorithms or ((default,) if default else ())
    if not names:
        raise SpecError("no algorithm given: pass --algo")
    return [
        (name, load_balancer_config(spec.balancer, shipped_config(ALGORITHMS[name], spec.balancer))) for name in names
    ]


def single_config(spec: BenchSpec) -> tuple[str, BalancerConfig]:
    """The one algorithm and config a cluster of ``harness up``, ``ui`` or the locustfile brings up."""
    if spec.upstream == "all":
        raise SpecError("--upstream all judges each upstream in turn with harness bench; name one upstream here")
    plan = resolve_configs(spec)
    if len(plan) != 1:
        raise SpecError("one algorithm at a time here: pass one --algo")
    return plan[0]


def upstreams_to_judge(spec: BenchSpec) -> list[str | None]:
    """``--upstream all``: every upstream (backend) some route passes to, in config order; else the one asked for."""
    if spec.upstream != "all" or spec.config is None:
        return [spec.upstream]
    names = load_balancer_config(spec.balancer, spec.config).routed_groups()
    if not names:
        raise SpecError(f"--upstream all: no route of {spec.config} passes to an upstream")
    return list[str | None](names)


def claims_config(spec: BenchSpec, upstream: str | None = None) -> BalancerConfig | None:
    """The config named by --claims-from, whose claims the run's config is held to; None without it."""
    if spec.claims_from is None:
        return None
    return load_balancer_config(spec.balancer, spec.claims_from, upstream)


def bench(spec: BenchSpec, reporter: Reporter | None = None) -> BenchResult:
    """Runs ``spec`` and returns every algorithm's result; writes ``results/<run-id>/``.

    Raises BadInputError (exit code 2) for a spec, config or environment that cannot work,
    before starting anything.
    """
    # With --config and no --algo the algorithm comes from the config, read below.
    replace(spec, algorithms=spec.algorithms or ("round_robin",)).validate()
    if spec.runtime != "k8s":  # on a cluster the balancer runs from the image
        check_installed(spec.balancer)
    check_reachable(spec.runtime, spec.k8s_context)
    scenario = load_scenario(spec.scenario) if spec.scenario else None
    plan = resolve_configs(spec, scenario)
    groups = upstreams_to_judge(spec)
    claimed = [claims_config(spec, group) for group in groups] if spec.config is not None else [None] * len(plan)
    label = plan[0][0] if len(plan) == 1 else "all"
    if spec.balancer != DEFAULT_BALANCER:
        label = f"{spec.balancer}-{label}"
    if scenario is not None:
        label += f"-{scenario.name}"
    run_dir = new_run_dir(spec.results_dir, label)
    results: list[AlgorithmResult] = []
    try:
        for index, (name, config) in enumerate(plan):
            claims_from = claimed[index] if index < len(claimed) else None
            claims = claims_from.server_claims() if claims_from is not None else None
            # --upstream all: one run per upstream, each in a folder named after it.
            folder = f"{groups[index]}-{name}" if spec.upstream == "all" else name
            run = AlgorithmRun(spec, ALGORITHMS[name], config, run_dir / folder, reporter, scenario, claims)
            results.append(run.execute())
            _write_summary(run_dir, results, complete=len(results) == len(plan))
    except BaseException as exc:
        _write_summary(run_dir, results, complete=False)
        report = None
        with contextlib.suppress(Exception):  # a report of what there is, if there is anything
            report = write_report(run_dir)
        if isinstance(exc, KeyboardInterrupt):
            raise RunInterrupted(run_dir, report) from exc
        raise
    return BenchResult(run_dir=run_dir, results=results, report=write_report(run_dir))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; what it had measured is in ``run_dir``."""

    def __init__(self, run_dir: Path, report: Path | None) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir
        self.report = report


def _write_summary(run_dir: Path, results: list[AlgorithmResult], complete: bool) -> None:
    write_json(
        run_dir / "summary.json",
        {
            "run_dir": str(run_dir),
            "complete": complete,
            "passed": complete and all(r.passed for r in results),
            "algorithms": {
                r.run_dir.name: {"passed": r.passed, "summary": str(r.run_dir / "summary.json")} for r in results
            },
        },
    )
