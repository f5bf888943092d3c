"""One algorithm's run: its lifecycle (:mod:`.algorithm_run`), its load, its steady-state
measurement and its fault scenario, each in a module of its own, and the result they make."""

from harness.run.algorithm_run import AlgorithmRun
from harness.run.reporter import Reporter, SilentReporter
from harness.run.result import AlgorithmResult, InstanceRow, tool_versions

__all__ = ["AlgorithmResult", "AlgorithmRun", "InstanceRow", "Reporter", "SilentReporter", "tool_versions"]
