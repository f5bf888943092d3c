"""``harness bench`` as a library call: every requested algorithm, one after another."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from harness.plan import prepare
from harness.results.store import new_run_dir, write_json
from harness.run import AlgorithmResult, AlgorithmRun, Reporter
from harness.spec import BenchSpec


@dataclass
class BenchResult:
    run_dir: Path
    results: list[AlgorithmResult]
    report: Path | None = None  # report.html of the run

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


def bench(spec: BenchSpec, reporter: Reporter | None = None) -> BenchResult:
    """Runs ``spec`` and returns every algorithm's result; writes ``results/<run-id>/``.

    Raises BadInputError (exit code 2) for a spec, config or environment that cannot work,
    before starting anything.
    """
    # The report's drawing library loads only for a run that draws: a command refused at its
    # options answers before it is loaded.
    from harness.reports.report import write_report

    plan = prepare(spec)
    run_dir = new_run_dir(spec.results_dir, plan.label)
    results: list[AlgorithmResult] = []
    try:
        for planned in plan.runs:
            run = AlgorithmRun(plan, planned, run_dir / planned.folder, reporter)
            results.append(run.execute())
            _write_summary(run_dir, results, complete=len(results) == len(plan.runs))
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
