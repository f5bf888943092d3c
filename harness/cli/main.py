"""``harness bench``: parse options, build a BenchSpec, call the library, map the outcome to an exit code.

Exit codes: 0 every verdict passed; 1 a verdict failed (or an unexpected error);
2 bad input; 3 a part did not start; 130 interrupted.
`harness doctor`: 0 when what the default `harness bench` needs (nginx) is installed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)
from rich.console import Console

from harness import infra
from harness.algorithms import ALGORITHM_NAMES
from harness.bench import RunInterrupted, bench
from harness.cli.doctor_command import doctor
from harness.cli.k8s_command import build_image, k8s_check, render_topology
from harness.cli.output import RichReporter, print_changes, print_comparison, print_matrix, print_result
from harness.cli.parser import build_parser, spec_from_args
from harness.cli.signals import interrupt_main_on_signals
from harness.cli.ui_command import ui
from harness.cli.up_command import up
from harness.compare import compare_balancers
from harness.errors import HarnessError, SpecError
from harness.matrix import run_matrix
from harness.reports.diff import Thresholds, compare_runs
from harness.runtimes.local import MAX_INSTANCES
from harness.spec import BenchSpec


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    errors = Console(stderr=True)
    interrupt_main_on_signals()
    try:
        if getattr(args, "infra_dir", None) is not None:
            infra.use_infra_dir(args.infra_dir)
        if hasattr(args, "infra_dir") and not (args.command == "k8s" and args.k8s_command == "render"):
            console.print(infra.describe(), highlight=False, style="dim", soft_wrap=True)
        return _COMMANDS[args.command](args, console)
    except HarnessError as exc:
        errors.print(f"harness: error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return exc.exit_code
    except RunInterrupted as stopped:
        errors.print("harness: interrupted; everything the run started has been stopped", highlight=False)
        errors.print(f"what was measured until then: {stopped.run_dir} (marked incomplete)", highlight=False)
        if stopped.report is not None:
            errors.print(f"report: {stopped.report}", highlight=False)
        return 130
    except KeyboardInterrupt:
        if args.command == "worker":
            # A worker starts nothing of its own: it has sent its records and left the run.
            errors.print("harness worker: stopped; the run it was in keeps what it reported", highlight=False)
        else:
            errors.print("harness: interrupted; everything the run started has been stopped", highlight=False)
        return 130


def _k8s(args: argparse.Namespace, console: Console) -> int:
    if args.k8s_command == "render":
        if args.algo not in ALGORITHM_NAMES or not 1 <= args.backends <= MAX_INSTANCES:
            raise SpecError(f"--algo must be one of {', '.join(ALGORITHM_NAMES)}; --backends 1-{MAX_INSTANCES}")
        # The YAML is the standard output, so the line saying where it came from is a comment in it.
        print(f"# {infra.describe()}\n{render_topology(args.algo, args.config, args.backends, args.image)}", end="")
        return 0
    if args.k8s_command == "image":
        built = build_image(args.tag, args.docker_base)
        console.print(f"{args.tag} (built as {built})", highlight=False)
        return 0
    return k8s_check(console, args.k8s_command, args.paths or [infra.infra_path("k8s")])


def _compare(args: argparse.Namespace, console: Console) -> int:
    limits = replace(
        Thresholds(),
        share_points=args.share_points,
        latency_ratio=args.latency_ratio,
        latency_ms=args.latency_ms,
        tail_ratio=args.tail_ratio,
        tail_ms=args.tail_ms,
    )
    changes = compare_runs(args.run_a, args.run_b, limits)
    print_changes(console, changes)
    return 1 if any(change.regression for change in changes) else 0


def _matrix(args: argparse.Namespace, console: Console) -> int:
    matrix_spec = BenchSpec(
        algorithms=ALGORITHM_NAMES,
        backends=args.backends,
        users=args.users,
        duration=args.duration,
        results_dir=args.results_dir,
        load_workers=args.load_workers,
        load_hosts=args.load_hosts,
    )
    with RichReporter(console) as reporter:
        table = run_matrix(matrix_spec, args.scenarios, reporter)
    print_matrix(console, table)
    return 0 if table.passed else 1


def _report(args: argparse.Namespace, console: Console) -> int:
    from harness.reports.report import write_report  # the drawing library, for this command alone

    console.print(f"report: {write_report(args.run)}")
    return 0


def _one_algorithm(args: argparse.Namespace) -> BenchSpec:
    spec = spec_from_args(args)
    if len(spec.algorithms) > 1:
        raise SpecError(f"harness {args.command} runs one algorithm: give --algo NAME")
    return spec


def _up(args: argparse.Namespace, console: Console) -> int:
    return up(_one_algorithm(args), console)


def _ui(args: argparse.Namespace, console: Console) -> int:
    return ui(_one_algorithm(args), console, args.web_host, args.web_port, args.web_any_interface)


def _compare_balancers(args: argparse.Namespace, console: Console) -> int:
    spec = spec_from_args(args)
    if len(spec.algorithms) > 1 or spec.config is not None:
        raise SpecError("compare-balancers runs one algorithm on the shipped configs: give --algo NAME")
    with RichReporter(console) as reporter:
        comparison = compare_balancers(spec, reporter)
    print_comparison(console, comparison)
    return 0 if comparison.passed else 1


def _bench(args: argparse.Namespace, console: Console) -> int:
    spec = spec_from_args(args)
    with RichReporter(console) as reporter:
        result = bench(spec, reporter)
    for algorithm_result in result.results:
        print_result(console, algorithm_result)
    verdict = "[bold green]all checks passed[/]" if result.passed else "[bold red]some checks failed[/]"
    console.print(f"{verdict}; results in {result.run_dir}")
    if result.report is not None:
        console.print(f"report: {result.report}")
    return 0 if result.passed else 1


def _worker(args: argparse.Namespace, console: Console) -> int:
    from harness.load.worker import run_worker  # Locust patches the standard library as it loads

    host, port = args.master
    sending = f"sending to {args.url}" if args.url else "sending where the run says"
    console.print(f"{args.name}: Locust worker of the master at {host}:{port}, {sending}", highlight=False)
    return run_worker(args)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "bench": _bench,
    "up": _up,
    "ui": _ui,
    "report": _report,
    "matrix": _matrix,
    "k8s": _k8s,
    "doctor": lambda args, console: doctor(console),
    "compare": _compare,
    "compare-balancers": _compare_balancers,
    "worker": _worker,
}


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
