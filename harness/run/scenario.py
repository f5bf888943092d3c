"""A fault scenario's run: load for its duration while its timeline injects and rolls back faults,
then the balancer's own analysis of what its health checks did about each fault."""

from __future__ import annotations

import time

import gevent
import pandas as pd

from harness.balancers.kind import FaultRun
from harness.checks.fault_rows import finished_at
from harness.cluster import Cluster
from harness.run.context import RunContext
from harness.run.grpc_verdicts import grpc_verdicts
from harness.run.load import RunLoad
from harness.run.result import Measured
from harness.run.session_verdicts import scenario_session_verdicts
from harness.scenarios.model import Scenario
from harness.scenarios.timeline import Timeline


def run_scenario(
    context: RunContext, load: RunLoad, cluster: Cluster, scenario: Scenario, timings: dict[str, float]
) -> Measured:
    """Loads ``cluster`` through the scenario (the balancer watched meanwhile), then judges each fault."""
    timeline = Timeline(scenario, cluster, context.journal)
    watch = context.kind.watch_faults(cluster.balancer, context.config)
    started = time.time()
    worker = gevent.spawn(timeline.run, started)
    try:
        frame, count = load.run(cluster.route, scenario.duration, timings, lambda: cluster.instances_under_test)
    finally:
        # Stopped between steps, not killed inside one: a half-done step could not be rolled back.
        timeline.stop()
        worker.join()
        timeline.rollback_all()
        watch.stop()
    verdicts, failover = watch.analyze(_fault_run(context, frame, timeline, started, cluster))
    verdicts += scenario_session_verdicts(context, load, timeline.records, cluster.generations, cluster.balancer)
    verdicts += grpc_verdicts(context, frame, cluster.route, len(cluster.instances_under_test))
    return Measured(verdicts, frame, count, failover=failover)


def _fault_run(
    context: RunContext, frame: pd.DataFrame, timeline: Timeline, load_start: float, cluster: Cluster
) -> FaultRun:
    """The clients' records with the faults' windows and a baseline of steady latency before the first."""
    scenario, spec = timeline.scenario, context.spec
    load_end = load_start + scenario.duration
    first_fault = min((r.injected_at for r in timeline.records if r.injected_at is not None), default=load_end)
    # The latency baseline: the warm-up before the first fault, once every user has spawned.
    baseline_start = max(load_start + spec.users / spec.spawn_rate, first_fault - scenario.warmup)
    steady = frame[(frame["time"] >= baseline_start) & (finished_at(frame) < first_fault)]
    return FaultRun(
        timeline.records, frame, steady, load_end, scenario.method, cluster.balancer.access_log,
        context.workers, context.zone, context.algorithm.name,
    )  # fmt: skip
