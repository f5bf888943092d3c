"""One algorithm on one fresh cluster: bring-up, probes, load, checks, results, teardown.

An :class:`AlgorithmRun` owns everything it starts (the runtime's instances and the
balancer) and stops all of it when it ends, whether it passed, failed or was interrupted.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gevent
import pandas as pd

from harness.algorithms import Algorithm
from harness.balancers import factory
from harness.balancers.base import BalancerConfig, ServerClaims
from harness.balancers.kind import FailoverWatch, FaultRun
from harness.balancers.registry import kind_of
from harness.checks.distribution import counts_of, exact_cycle, spread_matches
from harness.checks.errors import no_client_errors
from harness.checks.failover import (
    FailoverRow,
    counts_together,
    finished_at,
)
from harness.checks.least_conn import avoids_busy_instance
from harness.checks.schedule import smooth_weighted_round_robin
from harness.checks.stickiness import clients_not_pinned, clients_spread, each_client_on_one_instance
from harness.checks.verdict import Verdict, not_applicable
from harness.cluster import Cluster
from harness.errors import SpecError
from harness.expectations import expected_shares, peer_weights
from harness.load import probes
from harness.load.locust_load import LoadSettings, LocustLoad
from harness.load.open_model import OpenModelLoad, OpenModelSettings
from harness.load.records import COLUMNS, empty_frame
from harness.load.route import FixedRoute, Route
from harness.load.wrk import run_wrk
from harness.results.store import Journal, write_json, write_requests
from harness.runtimes.base import Instance
from harness.runtimes.factory import runtime_for
from harness.scenarios.model import Scenario
from harness.scenarios.timeline import Timeline
from harness.server_claims import ServerClaimChecks
from harness.spec import BenchSpec

SEQUENTIAL_CYCLES = 4  # periods of the pick order checked request by request


class Reporter(Protocol):
    """What a front end wants to hear while a run goes on."""

    def phase(self, algorithm: str, text: str) -> None: ...

    def load_progress(self, algorithm: str, elapsed: float, duration: float, requests: int) -> None: ...


class SilentReporter:
    def phase(self, algorithm: str, text: str) -> None:
        pass

    def load_progress(self, algorithm: str, elapsed: float, duration: float, requests: int) -> None:
        pass


@dataclass(frozen=True)
class InstanceRow:
    instance: str
    address: str
    requests: int
    share: float
    expected_share: float | None


@dataclass
class AlgorithmResult:
    algorithm: str
    config: Path
    run_dir: Path
    instances: list[Instance]
    requests: pd.DataFrame
    rows: list[InstanceRow]
    verdicts: list[Verdict]
    timings: dict[str, float] = field(default_factory=dict)
    locust_request_count: int = 0
    failover: list[FailoverRow] = field(default_factory=list)
    load_model: dict[str, Any] = field(default_factory=dict)  # closed (Locust users) or open (a fixed rate)
    notes: list[str] = field(default_factory=list)  # what the run read in the config, where its load went

    @property
    def passed(self) -> bool:
        return not any(verdict.failed for verdict in self.verdicts)


class AlgorithmRun:
    """Runs one algorithm's claims against one config on a cluster of its own."""

    def __init__(
        self,
        spec: BenchSpec,
        algorithm: Algorithm,
        config: BalancerConfig,
        run_dir: Path,
        reporter: Reporter | None = None,
        scenario: Scenario | None = None,
        server_claims: ServerClaims | None = None,
    ) -> None:
        """``server_claims``: what the servers must do, when it comes from another config than the
        one that runs (``--claims-from``); by default the running config's own."""
        self.spec = spec
        self.kind = kind_of(config.balancer)
        self.algorithm = algorithm
        self.config = config
        self.run_dir = run_dir
        self.reporter: Reporter = reporter or SilentReporter()
        self.journal = Journal(run_dir / "journal.jsonl")
        self.workers = config.effective_workers(spec.workers)
        # A zone given by --zone or already in the user's upstream: workers then share counts.
        self._zone = spec.zone or config.shares_counts()
        self.weights_by_instance: dict[str, int] | None = None
        self.scenario = scenario
        self._generated_config: Path | None = None
        self._balancer_version: str | None = None
        self._watch: FailoverWatch | None = None
        self._used = False
        self.load_model: dict[str, Any] = {}
        self._wrk_counts: dict[str, int] | None = None
        self._records_so_far: Callable[[], pd.DataFrame] = empty_frame
        self.notes: list[str] = []
        self.server_claims = server_claims or config.server_claims()

    def execute(self) -> AlgorithmResult:
        """Brings the cluster up, measures, tears it down; returns the verdicts and numbers.

        Raises HarnessError subclasses for bad input or parts that do not start; checks
        that fail are verdicts, not exceptions.
        """
        if self._used:
            raise RuntimeError("an AlgorithmRun runs once; create another for another run")
        self._used = True
        self.run_dir.mkdir(parents=True, exist_ok=True)
        name = self.algorithm.name
        self.journal.record("start", algorithm=name, config=str(self.config.path), workers=self.workers)
        cluster = Cluster(
            self.config,
            self.run_dir,
            backends=self.spec.backends,
            workers=self.workers,
            zone=self.spec.zone,
            weights=self.spec.weights,
            port=self.spec.port,
            journal=self.journal,
            runtime=runtime_for(self.spec, self.algorithm.name, self.run_dir),
        )
        self.weights_by_instance = cluster.weights_by_instance
        self._generated_config = cluster.balancer.config_path
        if self.scenario is not None:  # an instance the run will not have is bad input: say so before starting
            planned = [spec.name for spec in cluster.specs]
            for step in self.scenario.steps:
                if step.fault.acts_on_instance:
                    self.scenario.instance_name(step, planned)
                elif step.kind == "scale" and len(self.config.services) != 1:
                    raise SpecError(
                        f"{self.scenario.path}: scale works on configs with one service; "
                        f"{self.config.path} names {', '.join(self.config.services)}"
                    )
        self.reporter.phase(name, f"starting {self.config.balancer} and {len(cluster.specs)} instances")
        try:
            with self.kind.run_context(self.config):
                return self._execute(cluster)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or broken: keep what was measured, marked incomplete;
            # the original exception is what the caller must see, whatever happens here.
            with contextlib.suppress(Exception):
                self._write_partial(cluster, exc)
            raise

    def _execute(self, cluster: Cluster) -> AlgorithmResult:
        name = self.algorithm.name
        failover: list[FailoverRow] = []
        with cluster:
            instances = cluster.instances_under_test
            timings = dict(cluster.timings)
            self.notes = self._config_notes(cluster)
            # A balancer in a cluster says its own version; a local one is looked up by binary.
            in_cluster_version = getattr(cluster.balancer, "version", None)
            self._balancer_version = in_cluster_version() if in_cluster_version else None
            if self.scenario is None:
                verdicts, frame, locust_count = self._measure(cluster, instances, timings)
            else:
                frame, locust_count, timeline, load_start = self._run_scenario(cluster, self.scenario, timings)
        if self.scenario is not None:
            verdicts, failover = self._failover(frame, timeline, load_start, cluster)
        instances = list(cluster.ever_started.values())
        rows = self._rows(instances, frame)
        result = AlgorithmResult(
            algorithm=name,
            config=self.config.path,
            run_dir=self.run_dir,
            instances=instances,
            requests=frame,
            rows=rows,
            verdicts=verdicts,
            timings=timings,
            locust_request_count=locust_count,
            failover=failover,
            load_model=self.load_model,
            notes=self.notes,
        )
        self._write(result)
        return result

    def _load(self, route: Route, duration: float, timings: dict[str, float]) -> tuple[pd.DataFrame, int]:
        name = self.algorithm.name
        method, path = (
            ("GET", "/api/count") if self.scenario is None else (self.scenario.method, self.scenario.request_path)
        )
        started = time.monotonic()
        if self.spec.rate is not None:
            self.reporter.phase(name, f"load: {self.spec.rate:g} requests/s (open model) for {duration:g} s")
            settings = OpenModelSettings(self.spec.rate, duration, clients=self.spec.users, path=path, method=method)
            open_load = OpenModelLoad(route, settings)
            self._records_so_far = lambda: pd.DataFrame(open_load.rows, columns=COLUMNS)
            frame = open_load.run()
            self.load_model = {"model": "open", "rate": self.spec.rate, "late": open_load.late}
            count = open_load.request_count
        else:
            self.reporter.phase(name, f"load: {self.spec.users} users for {duration:g} s")
            load = LocustLoad(
                route,
                LoadSettings(
                    users=self.spec.users, duration=duration, spawn_rate=self.spec.spawn_rate,
                    load_workers=self.spec.load_workers, path=path, method=method,
                    # A balancer of connections: kept-alive ones would pin each user to one instance.
                    new_connections=self.kind.balances_connections,
                ),
                progress=lambda elapsed, count: self.reporter.load_progress(name, elapsed, duration, count),
                log_dir=self.run_dir,
                on_workers=lambda pids: self.journal.record("load workers", pids=pids),
            )  # fmt: skip
            self._records_so_far = load.recorder.frame
            frame = load.run()
            self.load_model = {"model": "closed", "users": self.spec.users, "load_workers": self.spec.load_workers}
            count = load.request_count
        timings["load_s"] = time.monotonic() - started
        self.journal.record("load", requests=len(frame), locust_requests=count, **self.load_model)
        return frame, count

    def _measure(
        self, cluster: Cluster, instances: list[Instance], timings: dict[str, float]
    ) -> tuple[list[Verdict], pd.DataFrame, int]:
        """Steady state: the probes, then load, then the algorithm's and the servers' claims on
        what was recorded."""
        name = self.algorithm.name
        route = cluster.route
        verdicts: list[Verdict] = list(cluster.balancer.listen_checks())
        servers = ServerClaimChecks(
            self.server_claims, self.config, self.workers, self._zone, self.algorithm.avoids_busy
        )
        started = time.monotonic()
        verdicts += servers.before_load(cluster, instances, lambda text: self.reporter.phase(name, text))
        timings["server_probes_s"] = time.monotonic() - started
        if self.algorithm.exact_order or self._least_conn_with_weights(instances):
            self.reporter.phase(name, "sequential requests")
            verdicts.append(self._exact_order(route, instances))
        if self.algorithm.avoids_busy and not counts_together(self.workers, self._zone):
            verdicts.append(
                not_applicable(
                    "short requests avoid the busy instance",
                    f"{self.workers} nginx workers without a shared zone each count only their own connections; "
                    "use --workers 1 or --zone",
                )
            )
        elif self.algorithm.avoids_busy:
            self.reporter.phase(name, "least_conn probe: one long request, then short ones")
            started = time.monotonic()
            verdicts.append(avoids_busy_instance(probes.least_conn_probe(route, instances)))
            timings["least_conn_probe_s"] = time.monotonic() - started
        if self.spec.driver == "wrk":
            wrk_verdicts, frame, count = self._wrk(route, instances, timings)
            return verdicts + wrk_verdicts, frame, count
        frame, locust_count = self._load(route, self.spec.duration, timings)
        verdicts.append(no_client_errors(frame))
        verdicts += servers.after_load(frame, instances)
        verdicts += servers.failover_to_backup(cluster, instances, lambda text: self.reporter.phase(name, text))
        expected = self._expected_shares(instances)
        if expected is not None:
            counts = counts_of(frame.loc[frame["instance"] != "", "instance"].tolist())
            verdicts.append(
                spread_matches(
                    counts,
                    expected,
                    check=f"spread under load matches {self.algorithm.spread} shares",
                    alpha=self.spec.false_alarm_rate,
                )
            )
        if self.algorithm.sticky:
            verdicts.append(each_client_on_one_instance(frame))
            verdicts.append(clients_spread(frame, minimum=min(2, len(instances))))
        elif self.kind.balances_connections:
            verdicts.append(clients_not_pinned(frame, len(instances)))
        return verdicts, frame, locust_count

    def _wrk(
        self, route: Route, instances: list[Instance], timings: dict[str, float]
    ) -> tuple[list[Verdict], pd.DataFrame, int]:
        """Capacity load with wrk: the counts per instance and the statuses are all there is to check."""
        assert isinstance(route, FixedRoute)  # the spec refuses wrk for client-side balancing
        self.reporter.phase(
            self.algorithm.name, f"load: wrk, {self.spec.users} connections for {self.spec.duration:g} s"
        )
        started = time.monotonic()
        wrk = run_wrk(
            route.url, route.path_for("/api/count"), self.spec.users, self.spec.duration, headers=route.headers
        )
        timings["load_s"] = time.monotonic() - started
        self._wrk_counts = dict(wrk.per_instance)
        self.load_model = {
            "model": "wrk", "connections": max(self.spec.users, 2), "requests_per_s": wrk.requests_per_s,
            "latency_ms": wrk.latency_ms, "statuses": wrk.statuses, "socket_errors": wrk.socket_errors,
        }  # fmt: skip
        self.journal.record("load", requests=wrk.requests, **self.load_model)
        verdicts = [
            Verdict(
                "clients saw no errors",
                wrk.failed == 0,
                f"{wrk.failed} errors in {wrk.requests} requests (statuses {wrk.statuses}, "
                f"{wrk.socket_errors} socket errors)",
                {"requests": wrk.requests, "errors": wrk.failed},
                {"errors": 0},
            )
        ]
        expected = self._expected_shares(instances)
        if expected is not None:
            check = f"spread under load matches {self.algorithm.spread} shares"
            verdicts.append(
                spread_matches(dict(wrk.per_instance), expected, check=check, alpha=self.spec.false_alarm_rate)
            )
        if self.algorithm.sticky:
            verdicts.append(
                not_applicable("each client sticks to one instance", "wrk sends from one address: one client")
            )
        return verdicts, empty_frame(), wrk.requests

    def _run_scenario(
        self, cluster: Cluster, scenario: Scenario, timings: dict[str, float]
    ) -> tuple[pd.DataFrame, int, Timeline, float]:
        """Load for the scenario's duration while its timeline injects and rolls back faults
        (and the balancer is watched for what its health checks saw)."""
        timeline = Timeline(scenario, cluster, self.journal)
        self._watch = self.kind.watch_faults(cluster.balancer, self.config)
        started = time.time()
        worker = gevent.spawn(timeline.run, started)
        try:
            frame, count = self._load(cluster.route, scenario.duration, timings)
        finally:
            # Stopped between steps, not killed inside one: a half-done step could not be rolled back.
            timeline.stop()
            worker.join()
            timeline.rollback_all()
            self._watch.stop()
        return frame, count, timeline, started

    def _failover(
        self, frame: pd.DataFrame, timeline: Timeline, load_start: float, cluster: Cluster
    ) -> tuple[list[Verdict], list[FailoverRow]]:
        """Joins the clients' records with the balancer's view per fault; the checks the faults call for."""
        scenario = timeline.scenario
        load_end = load_start + scenario.duration
        first_fault = min((r.injected_at for r in timeline.records if r.injected_at is not None), default=load_end)
        # The latency baseline: the warm-up before the first fault, once every user has spawned.
        baseline_start = max(load_start + self.spec.users / self.spec.spawn_rate, first_fault - scenario.warmup)
        steady = frame[(frame["time"] >= baseline_start) & (finished_at(frame) < first_fault)]
        assert self._watch is not None
        run = FaultRun(
            timeline.records, frame, steady, load_end, scenario.method, cluster.balancer.access_log,
            self.workers, self._zone, self.algorithm.name,
        )  # fmt: skip
        return self._watch.analyze(run)

    def _config_notes(self, cluster: Cluster) -> list[str]:
        """What the run read in the user's config and where its load goes, for the top of the output."""
        claims = self.config.claims()
        notes = [claims] if claims else []
        notes.append(f"load on {cluster.route.description}")
        route = cluster.route
        if isinstance(route, FixedRoute) and route.tls:
            cost = probes.handshake_cost(route)
            self.journal.record("tls", connect_ms=cost.connect_ms, handshake_ms=cost.handshake_ms, count=cost.count)
            notes.append(str(cost))
        rewrites = self.run_dir / "rewrites.txt"
        if rewrites.exists():
            changed = len(rewrites.read_text().splitlines())
            if changed:
                what = "directive" if changed == 1 else "directives"
                notes.append(f"{changed} {what} of the config changed for the run (each with its line): {rewrites}")
        return notes

    def _peer_weights(self, instances: list[Instance]) -> list[tuple[str, int]]:
        return peer_weights(self.config, instances, self.weights_by_instance)

    def _expected_shares(self, instances: list[Instance]) -> dict[str, float] | None:
        return expected_shares(self.algorithm, self.config, instances, self.weights_by_instance)

    def _least_conn_with_weights(self, instances: list[Instance]) -> bool:
        """least_conn over weighted servers where the balancer breaks ties by weight (nginx): one
        request at a time ties every server at no connection, so sequential requests follow the
        weighted order."""
        if self.algorithm.name != "least_conn" or not self.kind.least_conn_ties_by_weight:
            return False
        return len({weight for _, weight in self._peer_weights(instances)}) > 1

    def _exact_order(self, route: Route, instances: list[Instance]) -> Verdict:
        check = "sequential requests follow the exact order"
        if not counts_together(self.workers, self._zone):
            return not_applicable(
                check,
                f"{self.workers} nginx workers without a shared zone each keep their own rotation; "
                "use --workers 1 or --zone for an exact order",
            )
        peers = self._peer_weights(instances)
        if self.algorithm.spread == "even":
            peers = [(name, 1) for name, _ in peers]
        unless = self.kind.exact_order_unless(weighted=len({weight for _, weight in peers}) > 1)
        if unless is not None:
            return not_applicable(check, unless)
        period = smooth_weighted_round_robin(peers)
        responses = probes.sequential(route, SEQUENTIAL_CYCLES * len(period))
        return exact_cycle([response.instance for response in responses], period, check=check)

    def _rows(self, instances: list[Instance], frame: pd.DataFrame) -> list[InstanceRow]:
        served = frame[frame["instance"] != ""]
        # wrk keeps no per-request record, only its counts per instance.
        counts = self._wrk_counts if self._wrk_counts is not None else served["instance"].value_counts().to_dict()
        total = max(sum(counts.values()), 1)
        # Under a scenario the instances and their shares change with the faults.
        expected: dict[str, float] = {}
        if self.scenario is None:  # under a scenario the instances and their shares change with the faults
            expected = self._expected_shares(instances) or {}
        return [
            InstanceRow(
                instance=instance.name,
                address=instance.address,
                requests=int(counts.get(instance.name, 0)),
                share=int(counts.get(instance.name, 0)) / total,
                expected_share=expected.get(instance.name) if expected else None,
            )
            for instance in instances
        ]

    def _write_partial(self, cluster: Cluster, exc: BaseException) -> None:
        """What an interrupted run had measured, with a summary that says it is incomplete."""
        frame = self._records_so_far()
        instances = list(cluster.ever_started.values())
        result = AlgorithmResult(
            algorithm=self.algorithm.name,
            config=self.config.path,
            run_dir=self.run_dir,
            instances=instances,
            requests=frame,
            rows=self._rows(instances, frame),
            verdicts=[],
            timings=dict(cluster.timings),
            locust_request_count=len(frame),
            load_model=self.load_model,
            notes=self.notes,
        )
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        write_requests(frame, self.run_dir / "requests.csv")
        summary = self.summary(result)
        summary.update(complete=False, passed=False, interrupted=reason)
        write_json(self.run_dir / "summary.json", summary)

    def _write(self, result: AlgorithmResult) -> None:
        write_requests(result.requests, self.run_dir / "requests.csv")
        if result.failover:
            write_requests(pd.DataFrame([row.as_dict() for row in result.failover]), self.run_dir / "failover.csv")
        write_json(self.run_dir / "summary.json", self.summary(result))

    def summary(self, result: AlgorithmResult) -> dict[str, Any]:
        return {
            "algorithm": result.algorithm,
            "claim": self.algorithm.claim,
            "config": str(result.config),
            "balancer": self.config.balancer,
            "generated_config": str(self._generated_config),
            "passed": result.passed,
            "complete": True,
            "spec": {
                "backends": len(result.instances),
                "users": self.spec.users,
                "duration_s": self.scenario.duration if self.scenario else self.spec.duration,
                "workers": self.workers,
                "zone": self._zone,
                "weights": self.weights_by_instance,
            },
            "versions": tool_versions(self.config.balancer, self._balancer_version),
            "counts": {
                "requests": len(result.requests),
                "locust_requests": result.locust_request_count,
                "per_instance": {row.instance: row.requests for row in result.rows},
            },
            "instances": [row.__dict__ for row in result.rows],
            "timings_s": {key: round(value, 3) for key, value in result.timings.items()},
            "scenario": None if self.scenario is None else str(self.scenario.path),
            "load_model": self.load_model,
            "notes": self.notes,
            "failover": [row.as_dict() for row in result.failover],
            "verdicts": [verdict.as_dict() for verdict in result.verdicts],
        }


_versions: dict[str, dict[str, str]] = {}


def tool_versions(balancer: str, balancer_version: str | None = None) -> dict[str, str]:
    """The versions a run's results depend on, looked up once per process; ``balancer_version``
    when the balancer reported its own (nginx in a cluster's pod)."""
    key = balancer if balancer_version is None else f"{balancer} {balancer_version}"
    if key not in _versions:
        import locust

        from harness import __version__

        _versions[key] = {
            "harness": __version__,
            balancer: balancer_version or factory.version(balancer),
            "locust": str(locust.__version__),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
        }
    return dict(_versions[key])
