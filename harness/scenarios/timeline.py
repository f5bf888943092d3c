"""Carrying out a scenario's faults at their times while load runs; rollbacks always run."""

from __future__ import annotations

import time

import gevent.event

from harness.cluster import Cluster
from harness.faults.kinds import FaultUnavailable
from harness.results.faults import FaultRecord, fault_kind
from harness.results.store import Journal
from harness.scenarios.model import FaultStep, Scenario


class Timeline:
    """Runs ``scenario``'s steps against ``cluster``; ``rollback_all()`` undoes what is still active."""

    def __init__(self, scenario: Scenario, cluster: Cluster, journal: Journal) -> None:
        self.scenario = scenario
        self.cluster = cluster
        self.journal = journal
        names = [instance.name for instance in cluster.instances]
        self.records: list[FaultRecord] = []
        self._steps: list[tuple[FaultStep, FaultRecord]] = []
        for index, step in enumerate(scenario.steps, start=1):
            acts_on_instance = fault_kind(step.kind).acts_on_instance
            name = scenario.instance_name(step, names) if acts_on_instance else "all"
            record = FaultRecord(
                index=index,
                kind=step.kind,
                description=step.fault.describe(),
                instance=name,
                address=cluster.instance(name).address if acts_on_instance else "",
                planned_at=step.at,
                parameters=dict(step.parameters),
                planned_rollback=step.rollback_at is not None,
            )
            self.records.append(record)
            self._steps.append((step, record))
        self.started_at = 0.0
        self._stopping = gevent.event.Event()

    def stop(self) -> None:
        """Asks ``run`` to finish: it stops between steps, never in the middle of one."""
        self._stopping.set()

    def run(self, started_at: float) -> None:
        """Injects and rolls back at the planned offsets from ``started_at``; meant for a greenlet.

        A step that raises is recorded on its fault (and the fault rolled back); the
        timeline goes on with the next step.
        """
        self.started_at = started_at
        events: list[tuple[float, bool, FaultStep, FaultRecord]] = []
        for step, record in self._steps:
            events.append((step.at, True, step, record))
            if step.rollback_at is not None:
                events.append((step.rollback_at, False, step, record))
        for offset, inject, step, record in sorted(events, key=lambda event: (event[0], event[1])):
            if self._stopping.wait(timeout=max(0.0, started_at + offset - time.time())):
                return
            if inject:
                self._inject(step, record)
            else:
                self._rollback(step, record)

    def rollback_all(self) -> None:
        """Rolls back every fault still active; each rollback runs even if another fails."""
        for step, record in self._steps:
            if record.active:
                self._rollback(step, record)

    def _inject(self, step: FaultStep, record: FaultRecord) -> None:
        moment = time.time()  # the fault acts from its first system call on, not from when that returns
        try:
            step.fault.inject(self.cluster, record.instance)
        except FaultUnavailable as exc:
            record.skipped = str(exc)
            self.journal.record("fault skipped", step=record.index, kind=record.kind, reason=record.skipped)
            return
        except Exception as exc:  # the run goes on; the fault's verdict fails with this error
            record.injected_at = moment
            record.error = f"inject failed: {type(exc).__name__}: {exc}"
            self.journal.record("fault failed", step=record.index, kind=record.kind, error=record.error)
            self._rollback(step, record)
            return
        record.injected_at = moment
        record.inject_returned_at = time.time()
        if step.fault.heals_itself:
            record.rolled_back_at = time.time()
        self.journal.record(
            "fault", step=record.index, kind=record.kind, instance=record.instance, at=record.injected_at
        )

    def _rollback(self, step: FaultStep, record: FaultRecord) -> None:
        if not record.active:
            return
        try:
            step.fault.rollback(self.cluster, record.instance)
        except Exception as exc:  # a failed rollback is recorded; the others still run
            record.error = (record.error + "; " if record.error else "") + f"rollback failed: {exc}"
            self.journal.record("rollback failed", step=record.index, error=str(exc))
        record.rolled_back_at = time.time()
        self.journal.record("rollback", step=record.index, kind=record.kind, at=record.rolled_back_at)
