"""lb-harness: prove in numbers that a load-balancer config does what you think.

The library is the product; ``harness`` (the CLI) and the pytest plugin are front ends::

    from harness import BenchSpec, bench
    result = bench(BenchSpec(algorithms=("round_robin",), duration=3))
    assert result.passed, [str(v) for r in result.results for v in r.verdicts]

    plan = prepare(spec, command="up")              # every check of the input, nothing started
    with open_cluster(plan, plan.only, run_dir) as cluster: ...

Names are imported on first use: backend instances import ``harness.backends`` and must
not pay for (or be monkey-patched by) Locust, which the load layer imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ALGORITHMS": "harness.algorithms",
    "ALGORITHM_NAMES": "harness.algorithms",
    "Algorithm": "harness.algorithms",
    "AlgorithmResult": "harness.run",
    "AlgorithmRun": "harness.run",
    "BadInputError": "harness.errors",
    "BenchResult": "harness.bench",
    "BenchSpec": "harness.spec",
    "HarnessError": "harness.errors",
    "Plan": "harness.plan",
    "PlannedRun": "harness.plan",
    "Verdict": "harness.checks.verdict",
    "bench": "harness.bench",
    "open_cluster": "harness.plan",
    "prepare": "harness.plan",
}

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_NAMES",
    "Algorithm",
    "AlgorithmResult",
    "AlgorithmRun",
    "BadInputError",
    "BenchResult",
    "BenchSpec",
    "HarnessError",
    "Plan",
    "PlannedRun",
    "Verdict",
    "__version__",
    "bench",
    "open_cluster",
    "prepare",
]

if TYPE_CHECKING:
    from harness.algorithms import ALGORITHM_NAMES, ALGORITHMS, Algorithm
    from harness.bench import BenchResult, bench
    from harness.checks.verdict import Verdict
    from harness.errors import BadInputError, HarnessError
    from harness.plan import Plan, PlannedRun, open_cluster, prepare
    from harness.run import AlgorithmResult, AlgorithmRun
    from harness.spec import BenchSpec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    if module in {"harness.bench", "harness.run"}:
        # Locust patches the standard library for gevent; it must come before ssl users.
        importlib.import_module("locust")
    return getattr(importlib.import_module(module), name)
