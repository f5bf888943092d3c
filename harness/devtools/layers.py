"""The harness's import graph: ``python -m harness.devtools.layers`` fails on an import circle.

Module-level imports between the harness's own modules are read with ``ast`` (imports inside
functions, which break circles on purpose, and ``TYPE_CHECKING`` blocks are not counted). A
circle between modules fails; circles between packages (``harness.checks`` <-> ``harness.balancers``)
are listed, as the layering still to be untangled.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def module_imports(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports at module level."""
    base = root.parent
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__")
        graph[module]
        for node in ast.parse(path.read_text()).body:
            for imported in _imported(node):
                if imported.split(".")[0] == root.name:
                    target = imported if _is_module(base, imported) else imported.rpartition(".")[0]
                    if target and target != module:
                        graph[module].add(target)
    return dict(graph)


def _imported(node: ast.stmt) -> Iterable[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return []


def _is_module(base: Path, name: str) -> bool:
    path = base.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the package's first-level parts (``harness.checks``, ...)."""

    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[part(module)].update(part(t) for t in targets if part(t) != part(module))
    return dict(packages)


def main() -> int:
    graph = module_imports()
    module_circles = circles(graph)
    for group in circles(package_graph(graph)):
        print(f"packages in one circle (to untangle): {', '.join(group)}")
    for group in module_circles:
        print(f"import circle between modules: {' -> '.join(group)}", file=sys.stderr)
    print(f"{len(graph)} modules, {len(module_circles)} import circles between them")
    return 1 if module_circles else 0


if __name__ == "__main__":
    raise SystemExit(main())
