"""One algorithm on one fresh cluster: bring-up, measurement, results, teardown.

An :class:`AlgorithmRun` owns everything it starts (the runtime's instances and the
balancer) and stops all of it when it ends, whether it passed, failed or was interrupted.
What it measures is in :mod:`harness.run.steady` and :mod:`harness.run.scenario`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from harness.balancers.kind import PicksRun
from harness.cluster import Cluster
from harness.load import probes
from harness.load.route import FixedRoute
from harness.plan import Plan, PlannedRun, open_cluster
from harness.results.store import Journal
from harness.run.context import RunContext
from harness.run.load import RunLoad
from harness.run.load_hosts import load_hosts_of
from harness.run.reporter import Reporter, SilentReporter
from harness.run.result import AlgorithmResult, Measured, RunFacts, instance_rows, write_partial, write_result
from harness.run.scenario import run_scenario
from harness.run.steady import measure


class AlgorithmRun:
    """Runs one planned algorithm's claims against its config on a cluster of its own."""

    def __init__(self, plan: Plan, planned: PlannedRun, run_dir: Path, reporter: Reporter | None = None) -> None:
        self.context = RunContext(
            plan, planned, run_dir, reporter or SilentReporter(), Journal(run_dir / "journal.jsonl")
        )
        self.load = RunLoad(self.context)
        self.notes: list[str] = []
        self._facts = RunFacts(None)
        self._used = False

    def execute(self) -> AlgorithmResult:
        """Brings the cluster up, measures, tears it down; returns the verdicts and numbers.

        Raises HarnessError subclasses for parts that do not start (the plan has checked the
        input); checks that fail are verdicts, not exceptions.
        """
        if self._used:
            raise RuntimeError("an AlgorithmRun runs once; create another for another run")
        self._used = True
        context = self.context
        context.run_dir.mkdir(parents=True, exist_ok=True)
        context.journal.record(
            "start", algorithm=context.algorithm.name, config=str(context.config.path), workers=context.workers
        )
        cluster = open_cluster(context.plan, context.planned, context.run_dir, context.journal)
        context.weights_by_instance = cluster.weights_by_instance
        self._facts = RunFacts(cluster.balancer.config_path)
        context.phase(f"starting {context.config.balancer} and {len(cluster.specs)} instances")
        try:
            with context.kind.run_context(context.config), load_hosts_of(context) as hosts:
                self.load.hosts = hosts
                return self._execute(cluster)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or broken: keep what was measured, marked incomplete;
            # the original exception is what the caller must see, whatever happens here.
            with contextlib.suppress(Exception):
                frame = self.load.records_so_far()
                so_far = self._result(cluster, Measured([], frame, len(frame)), dict(cluster.timings))
                write_partial(context, so_far, self._facts, exc)
            raise

    def _execute(self, cluster: Cluster) -> AlgorithmResult:
        context = self.context
        with cluster:
            self.notes = self._config_notes(cluster)
            self._facts = RunFacts(cluster.balancer.config_path, cluster.balancer.reported_version())
            timings = dict(cluster.timings)
            if context.scenario is None:
                measured = measure(context, self.load, cluster, timings)
            else:
                measured = run_scenario(context, self.load, cluster, context.scenario, timings)
            if self.load.hosts is not None:
                self.notes.append(self.load.hosts.describe(measured.requests["client"]))
            if self.load.joined:
                each = ", ".join(f"{name} {records:,}" for name, records in self.load.joined.items())
                count = len(self.load.joined)
                self.notes.append(f"load from {count} worker{'s' if count > 1 else ''} that joined the run: {each}")
            self.notes.extend(lost.describe() for lost in self.load.lost)
        # After the balancer stopped: its log is then complete (nginx flushes its buffer on exit).
        balancer = cluster.balancer
        picks = PicksRun(
            balancer.access_log,
            cluster.generations,
            context.weights_by_instance,
            context.workers,
            context.zone,
            measured.requests,
            in_place=getattr(balancer, "changed_in_place", ()),  # only balancers with a runtime API have it
        )
        measured.verdicts.extend(context.kind.replay(context.config, picks))
        result = self._result(cluster, measured, timings)
        write_result(context, result, self._facts)
        return result

    def _result(self, cluster: Cluster, measured: Measured, timings: dict[str, float]) -> AlgorithmResult:
        instances = list(cluster.ever_started.values())
        return AlgorithmResult(
            algorithm=self.context.algorithm.name,
            config=self.context.config.path,
            run_dir=self.context.run_dir,
            instances=instances,
            requests=measured.requests,
            rows=instance_rows(self.context, instances, measured.requests, measured.counts),
            verdicts=measured.verdicts,
            timings=timings,
            locust_request_count=measured.request_count,
            failover=measured.failover,
            load_model=self.load.model,
            notes=self.notes,
        )

    def _config_notes(self, cluster: Cluster) -> list[str]:
        """What the run read in the user's config and where its load goes, for the top of the output."""
        claims = self.context.config.claims()
        notes = [claims] if claims else []
        route = cluster.route
        notes.append(f"load on {route.description}")
        if isinstance(route, FixedRoute) and route.tls:
            cost = probes.handshake_cost(route)
            self.context.journal.record(
                "tls", connect_ms=cost.connect_ms, handshake_ms=cost.handshake_ms, count=cost.count
            )
            notes.append(str(cost))
        rewrites = self.context.run_dir / "rewrites.txt"
        if rewrites.exists():
            changed = len(rewrites.read_text().splitlines())
            if changed:
                what = "directive" if changed == 1 else "directives"
                notes.append(f"{changed} {what} of the config changed for the run (each with its line): {rewrites}")
        return notes
