"""``harness doctor``: a table of what the harness needs here, and one line to install what is missing.

Exit code 0 when what the default ``harness bench`` needs (nginx) is found, 1 otherwise:
the other parts serve only some options, so their absence is reported, not failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from harness.doctor import CheckResult, Probe, SystemProbe, exit_code, install_command, run_checks


def print_checks(console: Console, results: Sequence[CheckResult], as_root: bool) -> None:
    # Paths and versions never wrap (one line each, to copy); the prose columns do, and what a
    # check found out beyond a path goes in the notes under the table. With the light box this
    # fits an 80-column terminal, what rich assumes when the output is piped.
    table = Table(
        title="what the harness needs on this machine",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("part", overflow="fold", min_width=13)
    table.add_column("status", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("path", no_wrap=True)
    table.add_column("needed for", overflow="fold", min_width=12)
    notes: list[str] = []
    for result in results:
        if result.found:
            status = "[bold green]found[/]"
        else:
            # Red only for what the default `harness bench` cannot do without.
            status = "[bold red]missing[/]" if result.required else "[yellow]missing[/]"
        table.add_row(result.part, status, result.version or "-", result.path or "-", result.needed_for)
        if result.detail:
            notes.append(f"  {result.part}: {result.detail}")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, markup=False)
    command = install_command(results, as_root)
    if command is None:
        console.print("nothing to install", highlight=False)
    else:
        console.print(f"install the missing packages: [bold]{command}[/]", highlight=False)
    if exit_code(results) == 0:
        console.print("[bold green]harness bench can run[/] (its default balancer, nginx, is found)")
    else:
        missing = ", ".join(result.part for result in results if result.required and not result.found)
        console.print(f"[bold red]harness bench cannot run[/]: {missing} missing", highlight=False)


def doctor(console: Console, probe: Probe | None = None) -> int:
    """Checks every part, prints the table and the install line; the exit code (see the module)."""
    probe = probe or SystemProbe()
    results = run_checks(probe)
    print_checks(console, results, probe.is_root())
    return exit_code(results)
