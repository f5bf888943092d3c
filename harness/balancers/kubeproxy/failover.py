"""What kube-proxy's rules did about each fault of a scenario: the endpoints the readiness
probes took out and put back, logged by the harness's probe loop, and what the clients saw."""

from __future__ import annotations

from dataclasses import dataclass

from harness.balancers.kind import FaultRun
from harness.checks.fault_rows import FailoverRow
from harness.checks.health_models import Readiness
from harness.checks.readiness import read_endpoint_changes, readiness_failover
from harness.checks.verdict import Verdict


@dataclass(frozen=True)
class ReadinessFailover:
    readiness: Readiness

    def stop(self) -> None:
        pass  # the probe loop logs every endpoint change itself

    def analyze(self, run: FaultRun) -> tuple[list[Verdict], list[FailoverRow]]:
        changes = read_endpoint_changes(run.access_log)
        return readiness_failover(list(run.records), run.frame, changes, run.steady, run.load_end, self.readiness)
