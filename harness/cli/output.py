"""What ``harness bench`` prints: live progress while it runs, a table per algorithm after."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.compare import Comparison
from harness.matrix import Matrix
from harness.reports.diff import Change
from harness.run import AlgorithmResult, InstanceRow

_STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "N/A": "yellow"}


class RichReporter:
    """Shows the phase of each algorithm and a bar for its load; a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.fields[algorithm]:<14}"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[requests]:>7} requests"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}
        self._noticed: set[str] = set()

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def _task(self, algorithm: str) -> TaskID:
        if algorithm not in self.tasks:
            self.tasks[algorithm] = self.progress.add_task("", total=None, algorithm=algorithm, requests=0)
        return self.tasks[algorithm]

    def phase(self, algorithm: str, text: str) -> None:
        self.progress.update(self._task(algorithm), description=text)

    def load_progress(self, algorithm: str, elapsed: float, duration: float, requests: int) -> None:
        self.progress.update(self._task(algorithm), total=duration, completed=elapsed, requests=requests)

    def notice(self, text: str) -> None:
        # Above the progress bars, once: every algorithm of a run may say the same.
        if text not in self._noticed:
            self._noticed.add(text)
            self.console.print(text, highlight=False)


def _short(address: str) -> str:
    """A UNIX socket by its folder and name (``unix:sockets/app-1.sock``): the run directory is the same for all."""
    if not address.startswith("unix:"):
        return address
    path = Path(address.removeprefix("unix:"))
    return f"unix:{path.parent.name}/{path.name}"


SHOWN_ROWS = 30  # instances in the terminal's table; a larger run shows its ends


def print_result(console: Console, result: AlgorithmResult) -> None:
    table = Table(title=f"{result.algorithm}  ({result.config.name})", title_justify="left")
    table.add_column("instance")
    table.add_column("address")
    table.add_column("requests", justify="right")
    table.add_column("share", justify="right")
    table.add_column("expected share", justify="right")
    rows: list[InstanceRow | None] = list(result.rows)
    if len(rows) > SHOWN_ROWS:
        # The fewest and the most: where a spread over many instances goes wrong shows at its ends.
        ordered, half = sorted(result.rows, key=lambda row: row.requests), SHOWN_ROWS // 2
        rows = [*ordered[:half], None, *ordered[-half:]]
        table.caption = f"the {half} fewest and most requests of {len(ordered)} instances; all in the report"
    for row in rows:
        if row is None:
            table.add_row(f"... {len(result.rows) - SHOWN_ROWS} more", "", "", "", "")
            continue
        expected = "-" if row.expected_share is None else f"{row.expected_share:.1%}"
        table.add_row(row.instance, _short(row.address), str(row.requests), f"{row.share:.1%}", expected)
    for note in result.notes:
        console.print(f"  {note}", highlight=False, soft_wrap=True)
    console.print(table)
    if result.load_model.get("model") == "open":
        model = result.load_model
        console.print(
            f"  open model: {model['rate']:g} requests/s, {len(result.requests)} sent, {model['late']} late "
            "(no free slot when due); latency counted from when each was due",
            highlight=False,
        )
    if result.load_model.get("model") == "wrk":
        model = result.load_model
        latency = ", ".join(f"{name} {value:g} ms" for name, value in model["latency_ms"].items())
        console.print(
            f"  wrk: {model['requests_per_s']:g} requests/s on {model['connections']} connections; latency {latency}",
            highlight=False,
        )
    if result.failover:
        print_failover(console, result)
    for verdict in result.verdicts:
        style = _STATUS_STYLE[verdict.status]
        console.print(f"  [{style}]{verdict.status:<4}[/{style}] {verdict.check}: {verdict.summary}", highlight=False)
    console.print()


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def print_failover(console: Console, result: AlgorithmResult) -> None:
    table = Table(title="failover", title_justify="left")
    columns = (
        "fault", "instance", "at s", "errors", "attempts", "retried",
        "failures", "eject s", "recover s", "p50/p99 ms fault", "p50/p99 ms steady",
    )  # fmt: skip
    for column in columns:
        left = column in {"fault", "instance"}
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "instance")
    table.caption = (
        "errors: client errors while the fault lasted; attempts: the balancer's attempts on the instance; retried: "
        "requests passed to another instance (nginx: of those attempts; HAProxy: all retried requests); failures: "
        "failed attempts until nginx took it out; eject s: until it was out (HAProxy: marked DOWN); recover s: from "
        "the rollback to its first success (HAProxy: marked UP)"
    )
    for row in result.failover:
        if row.skipped:
            table.add_row(row.fault, row.instance, "-", f"skipped: {row.skipped}", *["-"] * (len(columns) - 4))
            continue
        errors = str(row.client_errors) + (f" {row.errors_by_status}" if row.errors_by_status else "")
        table.add_row(
            row.fault,
            row.instance,
            _ms(row.at_s),
            errors,
            str(row.attempts_on_instance),
            str(row.retried_elsewhere),
            str(row.failures_before_eject) if row.time_to_eject_s is not None else "never",
            _seconds(row.time_to_eject_s),
            _seconds(row.time_to_recover_s),
            f"{_ms(row.p50_window_ms)}/{_ms(row.p99_window_ms)}",
            f"{_ms(row.p50_steady_ms)}/{_ms(row.p99_steady_ms)}",
        )
    console.print(table)


def print_comparison(console: Console, comparison: Comparison) -> None:
    """Every run's own tables, then the balancers side by side: latency, then each fault."""
    for result in comparison.results.values():
        for algorithm_result in result.results:
            print_result(console, algorithm_result)
    latency = Table(
        title="latency clients saw (extra hop: p50 through the balancer minus p50 picking the instance themselves)",
        title_justify="left",
    )
    for column in ("balancer", "requests", "requests/s", "p50 ms", "p99 ms", "extra hop p50 ms", "picks as predicted"):
        latency.add_column(column, justify="left" if column == "balancer" else "right")
    for row in comparison.latency():
        numbers = (row.requests, row.requests_per_s, row.p50_ms, row.p99_ms, row.extra_hop_p50_ms)
        cells = ("-" if number is None else str(number) for number in numbers)
        latency.add_row(row.balancer, *cells, row.picks_as_predicted)
    console.print(latency)
    grpc = comparison.grpc()
    if grpc:
        table = Table(title="HTTP/2: where the calls of one connection went", title_justify="left")
        for column in ("balancer", "one connection's calls reached", "the load's connections", "verdict"):
            table.add_column(column)
        for grpc_row in grpc:
            table.add_row(grpc_row.balancer, grpc_row.one_connection, grpc_row.under_load, grpc_row.verdict)
        console.print(table)
    rows = comparison.rows()
    if rows:
        table = Table(
            title="the same faults: nginx (passive), HAProxy (active), client side (passive), kube-proxy (readiness)",
            title_justify="left",
        )
        table.add_column("fault")
        table.add_column("measure")
        for balancer in comparison.results:
            table.add_column(balancer, justify="right")
        for fault, metric, values in rows:
            table.add_row(fault, metric, *("-" if v is None else str(v) for v in values.values()))
        console.print(table)
    for name, why in comparison.skipped.items():
        console.print(f"{name}: not run: {why}", highlight=False)
    for name, result in comparison.results.items():
        verdict = "[bold green]all checks passed[/]" if result.passed else "[bold red]some checks failed[/]"
        console.print(f"{name}: {verdict}; results in {result.run_dir}")
    if comparison.directory is not None:
        console.print(f"comparison saved in {comparison.directory}")


def print_changes(console: Console, changes: list[Change]) -> None:
    """Run A against run B, measure by measure; regressions in red, and a last line that says."""
    table = Table(title="run A (baseline) against run B", title_justify="left")
    for column in ("algorithm", "measure", "A", "B", ""):
        table.add_column(column, justify="right" if column in ("A", "B") else "left")
    for change in changes:
        mark = f"[bold red]REGRESSION[/] {change.why}" if change.regression else ""
        before = "-" if change.before is None else str(change.before)
        after = "-" if change.after is None else str(change.after)
        table.add_row(change.algorithm, change.measure, before, after, mark)
    console.print(table)
    regressions = [change for change in changes if change.regression]
    if regressions:
        console.print(f"[bold red]{len(regressions)} regressions[/] beyond the thresholds")
    else:
        console.print("[bold green]no regression[/] beyond the thresholds")


def print_matrix(console: Console, matrix: Matrix) -> None:
    table = Table(title=f"every algorithm on every balancer ({matrix.directory.name})", title_justify="left")
    columns = (
        "balancer", "algorithm", "scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "dist. err",
        "picks as predicted", "verdicts",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:3] else "right")
    for row in matrix.rows:
        verdicts = f"{row.verdicts_passed} ok" + (
            f", [bold red]{row.verdicts_failed} failed[/]" if row.verdicts_failed else ""
        )
        error = "-" if row.distribution_error_points is None else f"{row.distribution_error_points:.2f}"
        table.add_row(
            row.balancer, row.algorithm, row.scenario or "-", str(row.requests_per_s), str(row.p50_ms),
            str(row.p95_ms), str(row.p99_ms), error, row.picks_as_predicted, verdicts,
        )  # fmt: skip
    console.print(table)
    console.print(f"table in {matrix.directory / 'matrix.csv'} and {matrix.directory / 'matrix.html'}")
