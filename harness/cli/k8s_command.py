"""``harness k8s validate`` and ``harness k8s lint``: one line per problem, exit 1 when there is one."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from harness.k8s.lint import lint
from harness.k8s.validate import SUPPORTED_VERSIONS, validate


def k8s_check(console: Console, command: str, paths: list[Path]) -> int:
    if command == "validate":
        problems = validate(paths)
        what = f"the schemas of Kubernetes {', '.join(SUPPORTED_VERSIONS)} (strict)"
    else:
        problems, mappings = lint(paths)
        what = "the lint checks"
        for mapping in mappings:
            console.print(f"note: {mapping}", highlight=False, soft_wrap=True)
    for problem in problems:
        console.print(f"[bold red]problem[/] {problem}", highlight=False, soft_wrap=True)
    where = ", ".join(str(path) for path in paths)
    if problems:
        console.print(f"{len(problems)} problems in {where} against {what}", highlight=False)
        return 1
    console.print(f"{where}: every manifest passes {what}", highlight=False)
    return 0
