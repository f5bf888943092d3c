"""What HAProxy's active checks did about each fault of a scenario: its servers' states,
sampled from the stats socket while the load runs, joined with its log and the clients' records."""

from __future__ import annotations

import gevent

from harness.balancers.haproxy.access_log import read_access_log
from harness.balancers.haproxy.balancer import HaproxyBalancer
from harness.balancers.haproxy.states import StateRecorder, spawn_recorder
from harness.balancers.kind import FaultRun
from harness.checks.active import active_failover_row, active_fault_verdicts
from harness.checks.fault_rows import FailoverRow
from harness.checks.health_models import ActiveChecks
from harness.checks.verdict import Verdict


class ActiveFailover:
    """Samples the servers' states from the moment it is made until ``stop``."""

    def __init__(self, balancer: HaproxyBalancer, checks: ActiveChecks) -> None:
        self.checks = checks
        self.states: StateRecorder
        self._sampler: gevent.Greenlet
        self.states, self._sampler = spawn_recorder(balancer)

    def stop(self) -> None:
        self.states.stop()
        self._sampler.join()

    def analyze(self, run: FaultRun) -> tuple[list[Verdict], list[FailoverRow]]:
        log = read_access_log(run.access_log)
        verdicts: list[Verdict] = []
        rows: list[FailoverRow] = []
        for record in run.records:
            after = record.injected_at or 0.0
            # A fault's transitions come before the next fault on the same instance begins.
            later = [r.injected_at or 0.0 for r in run.records if r.instance == record.instance]
            until = min((moment for moment in later if moment > after), default=run.load_end)
            down_at = self.states.first(record.instance, "DOWN", after, until)
            up_at = self.states.first(record.instance, "UP", record.rolled_back_at or run.load_end, until)
            row = active_failover_row(record, run.frame, log, down_at, up_at, run.steady, run.load_end)
            rows.append(row)
            verdicts += active_fault_verdicts(row, record, self.checks, run.method)
        return verdicts, rows
