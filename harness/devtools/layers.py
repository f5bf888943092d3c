"""The harness's shape, checked: ``python -m harness.devtools.layers`` fails when it breaks.

Module-level imports between the harness's own modules are read with ``ast`` (imports inside
functions and ``TYPE_CHECKING`` blocks are not counted). It fails on

- an import circle between modules, or between the package's first-level parts;
- an import from a lower layer to a higher one (``LAYERS``, lowest first), or a part in no layer;
- a module over ``MAX_MODULE_LINES`` lines or a function over ``MAX_FUNCTION_LINES``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# The first-level parts of the package, lowest first. A part imports only from its own layer or
# the ones below: the words every layer shares at the bottom, then the parts that start things
# (instances, runtimes, load, balancers), then what runs an algorithm, then the front ends.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(f"harness.{name}" for name in layer.split()) or frozenset({"harness"})
    for layer in (
        "errors tools net devtools pytest_plugin models",
        "readiness reaper infra results reports",
        "processes netns backends checks",
        "k8s",
        "runtimes topology",
        "load",
        "balancers",
        "algorithms cluster",
        "expectations faults spec server_claims",
        "scenarios",
        "plan",
        "run",
        "bench",
        "compare matrix console doctor",
        "shipped cli",
        "",  # the curated API, harness/__init__, at the top: nothing inside imports it
    )
)


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
                    if isinstance(node, ast.ImportFrom) and target == node.module and _names_modules(base, node):
                        continue
                    if target and target != module:
                        graph[module].add(target)
    return dict(graph)


def _imported(node: ast.stmt) -> Iterable[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from harness import reaper` imports the module harness.reaper; the package's
        # __init__ counts only when a name of its own is taken (`from harness import bench`).
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return []


def _names_modules(base: Path, node: ast.ImportFrom) -> bool:
    return all(_is_module(base, f"{node.module}.{alias.name}") for alias in node.names)


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

    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[_part(module)].update(_part(t) for t in targets if _part(t) != _part(module))
    return dict(packages)


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import from a lower layer to a higher one, and each part that is in no layer."""
    layer_of = {part: index for index, layer in enumerate(LAYERS) for part in layer}
    problems = [f"{part} is in no layer of LAYERS: add it" for part in sorted(set(map(_part, graph)) - set(layer_of))]
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            low, high = layer_of.get(_part(module)), layer_of.get(_part(target))
            if low is not None and high is not None and high > low:
                problems.append(f"{module} imports {target}, a higher layer")
    return problems


def oversized(root: Path = PACKAGE_ROOT) -> list[str]:
    """Modules over MAX_MODULE_LINES lines and functions over MAX_FUNCTION_LINES, largest first."""
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(root.parent)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append((lines, f"{name}: {lines} lines (at most {MAX_MODULE_LINES})"))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        (length, f"{name}:{node.lineno} {node.name}(): {length} lines (at most {MAX_FUNCTION_LINES})")
                    )
    return [text for _, text in sorted(found, reverse=True)]


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def main() -> int:
    graph = module_imports()
    problems = [f"import circle between modules: {' -> '.join(group)}" for group in circles(graph)]
    problems += [f"packages in one circle: {', '.join(group)}" for group in circles(package_graph(graph))]
    problems += upward_imports(graph)
    problems += oversized()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(graph)} modules in {len(LAYERS)} layers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
