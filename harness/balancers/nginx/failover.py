"""What nginx's passive checks did about each fault of a scenario, from its access log and the
clients' records; a client-side balancer keeps the same rule and the same log, and is judged
the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.balancers.kind import FaultRun
from harness.balancers.nginx.access_log import read_attempts
from harness.checks.fault_rows import FailoverRow, counts_together, observe
from harness.checks.health_models import PassiveChecks
from harness.checks.passive import failover_row, fault_verdicts
from harness.checks.verdict import Verdict


@dataclass(frozen=True)
class PassiveFailover:
    """Judges each fault against ``passive``: max_fails, fail_timeout and what nginx retries."""

    passive: PassiveChecks
    # The balancer's attempts on its peers, from its log (nginx's by default).
    read_attempts: Callable[[Path], pd.DataFrame] = read_attempts

    def stop(self) -> None:
        pass  # the access log is the whole record: nothing sampled while the load runs

    def analyze(self, run: FaultRun) -> tuple[list[Verdict], list[FailoverRow]]:
        every_attempt = self.read_attempts(run.access_log)
        shared = counts_together(run.workers, run.zone)
        verdicts: list[Verdict] = []
        rows: list[FailoverRow] = []
        for record in run.records:
            # A fault's effects end where the next fault on the same address begins.
            later = [
                r.injected_at
                for r in run.records
                if r.address == record.address and r.injected_at and r.injected_at > (record.injected_at or 0.0)
            ]
            observation = observe(
                record, run.frame, every_attempt, run.load_end, until=min(later, default=run.load_end)
            )
            row = failover_row(observation, run.steady, self.passive, shared)
            rows.append(row)
            verdicts += fault_verdicts(row, observation, self.passive, run.workers, run.zone, run.algorithm, run.method)
        return verdicts, rows
