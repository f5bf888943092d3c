"""Everything a run needs, checked before anything starts: ``prepare(spec) -> Plan``, then
``open_cluster(plan, run, run_dir)`` for each planned run.

Every front end (bench, up, ui, the console, the locustfile, compare-balancers, the matrix,
the pytest plugin) goes through these two, so a spec is validated once, in one place, before
a run directory exists: the options, the balancer's binary, the runtime's cluster, the
scenario and its instance names, the configs and their claims, the weights against the
instances the run will start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness.algorithms import ALGORITHMS, Algorithm, shipped_config
from harness.balancers.base import BalancerConfig, ServerClaims
from harness.balancers.factory import check_installed, load_balancer_config
from harness.balancers.registry import DEFAULT_BALANCER, kind_of
from harness.cluster import Cluster
from harness.errors import SpecError
from harness.results.faults import fault_kind
from harness.results.store import Journal
from harness.runtimes.factory import check_reachable, runtime_for
from harness.scenarios.model import Scenario, load_scenario
from harness.spec import BenchSpec
from harness.topology import plan_instances, plan_side_instances, weights_for


@dataclass(frozen=True)
class PlannedRun:
    """One algorithm on one config, in ``folder`` of the run directory."""

    algorithm: Algorithm
    config: BalancerConfig
    folder: str
    server_claims: ServerClaims | None = None  # --claims-from: the original config's; None: the config's own


@dataclass(frozen=True)
class Plan:
    spec: BenchSpec
    runs: tuple[PlannedRun, ...]
    scenario: Scenario | None = None

    @property
    def label(self) -> str:
        """The run directory's name: the algorithm (or ``all``), the balancer, the scenario."""
        label = self.runs[0].algorithm.name if len(self.runs) == 1 else "all"
        if self.spec.balancer != DEFAULT_BALANCER:
            label = f"{self.spec.balancer}-{label}"
        return label if self.scenario is None else f"{label}-{self.scenario.name}"

    @property
    def only(self) -> PlannedRun:
        """The one run of a plan prepared for a command that brings up one cluster."""
        assert len(self.runs) == 1, "prepare(..., command=...) plans exactly one run"
        return self.runs[0]


def prepare(spec: BenchSpec, command: str = "bench") -> Plan:
    """Validates ``spec`` for ``command`` (bench, up, ui, locust) and plans its runs.

    Raises BadInputError subclasses (exit code 2) naming the option, file and line at fault;
    nothing is started and no directory is made.
    """
    # With --config and no --algo the algorithm comes from the config (or the scenario), read below.
    replace(spec, algorithms=spec.algorithms or ("round_robin",)).validate()
    refused = kind_of(spec.balancer).refused_commands.get(command)
    if refused:
        raise SpecError(refused)
    if command != "bench" and spec.upstream == "all":
        raise SpecError("--upstream all judges each upstream in turn with harness bench; name one upstream here")
    if spec.runtime != "k8s":  # on a cluster the balancer runs from the image
        check_installed(spec.balancer)
    check_reachable(spec.runtime, spec.k8s_context)
    scenario = load_scenario(spec.scenario) if spec.scenario and command == "bench" else None
    if scenario is not None and scenario.workload is not None and not spec.workload.chosen:
        spec = spec.with_workload(scenario.workload)  # the scenario's sessions, unless --workload chose others
    runs = tuple(_plan_runs(spec, scenario))
    if command != "bench" and len(runs) != 1:
        raise SpecError("one algorithm at a time here: pass one --algo")
    for run in runs:
        _check_instances(spec, run, scenario)
    return Plan(spec, runs, scenario)


def open_cluster(plan: Plan, run: PlannedRun, run_dir: Path, journal: Journal | None = None) -> Cluster:
    """The cluster ``run`` runs on, on the spec's runtime; not started yet (use it as a context manager)."""
    spec = plan.spec
    return Cluster(
        run.config, run_dir, backends=spec.backends, workers=run.config.effective_workers(spec.workers),
        zone=spec.zone, weights=spec.weights, port=spec.port, journal=journal,
        runtime=runtime_for(spec, run.algorithm.name, run_dir), address=spec.bind_address,
    )  # fmt: skip


def upstreams_to_judge(spec: BenchSpec) -> list[str | None]:
    """``--upstream all``: every upstream (backend) some route passes to, in config order; else the one asked for."""
    if spec.upstream != "all" or spec.config is None:
        return [spec.upstream]
    names = load_balancer_config(spec.balancer, spec.config).routed_groups()
    if not names:
        raise SpecError(f"--upstream all: no route of {spec.config} passes to an upstream")
    return list[str | None](names)


def _plan_runs(spec: BenchSpec, scenario: Scenario | None) -> list[PlannedRun]:
    """Each algorithm with the config it runs against; all parsed before anything starts.

    Without --algo the algorithm comes from the scenario, else from the config's upstream.
    """
    default = scenario.algorithm if scenario is not None else None
    if spec.config is None:
        names = spec.algorithms or ((default,) if default else ())
        if not names:
            raise SpecError("no algorithm given: pass --algo")
        grpc, http2 = spec.workload.is_grpc, spec.workload.is_http2
        paths = [(ALGORITHMS[name], shipped_config(ALGORITHMS[name], spec.balancer, grpc, http2)) for name in names]
        shipped = [(algorithm, load_balancer_config(spec.balancer, path)) for algorithm, path in paths]
        return [PlannedRun(algorithm, config, algorithm.name) for algorithm, config in shipped]
    runs = []
    for upstream in upstreams_to_judge(spec):
        config = load_balancer_config(spec.balancer, spec.config, upstream, spec.route)
        original = load_balancer_config(spec.balancer, spec.claims_from, upstream) if spec.claims_from else None
        algorithm = spec.algorithms[0] if spec.algorithms else default or (original or config).inferred_algorithm()
        if algorithm not in ALGORITHMS:
            raise SpecError(f"{spec.config} uses `{algorithm}`; pass --algo to say which behaviour to check")
        # --upstream all: one run per upstream, each in a folder named after it.
        folder = f"{upstream}-{algorithm}" if spec.upstream == "all" else algorithm
        claims = original.server_claims() if original is not None else None
        _check_protocol(spec, config)
        runs.append(PlannedRun(ALGORITHMS[algorithm], config, folder, claims))
    return runs


# What a route speaks beside HTTP/1.1, the workload that speaks it, and what each side of a
# mismatch says: the route's (run it with the workload) and the workload's (give such a route).
_PROTOCOLS = (
    ("grpc", "passes gRPC over HTTP/2", "or name an HTTP route with --route",
     "calls gRPC", "passes gRPC (nginx grpc_pass, a Service port named grpc)"),
    ("http2", "takes HTTP/2 only (h2c)", "or name a route of HTTP/1.1 with --route",
     "sends HTTP/2", "takes HTTP/2 (nginx `listen 80 http2`, HAProxy `bind :80 proto h2`, a Service port with "
     "appProtocol kubernetes.io/h2c)"),
)  # fmt: skip


def _check_protocol(spec: BenchSpec, config: BalancerConfig) -> None:
    """A route that passes gRPC takes the gRPC workload, and the gRPC workload such a route; the
    same for a route of plain HTTP/2 and the http2 workload."""
    only = {"grpc": config.speaks_grpc, "http2": config.speaks_http2}
    takes = {"grpc": config.speaks_grpc, "http2": config.offers_http2}  # HTTP/2 may come beside HTTP/1.1
    for workload, route_does, or_else, workload_does, give in _PROTOCOLS:
        if only[workload] and spec.workload.kind != workload:
            raise SpecError(
                f"{config.path}: the route under test {route_does}: run it with --workload {workload} ({or_else})"
            )
        if spec.workload.kind == workload and not takes[workload]:
            raise SpecError(
                f"--workload {workload} {workload_does}, but the route under test of {config.path} passes "
                f"HTTP/1.1: give a config whose route {give}"
            )


def _check_instances(spec: BenchSpec, run: PlannedRun, scenario: Scenario | None) -> None:
    """The instances the run will start fit the weights and the scenario's steps."""
    config = run.config
    under_test = plan_instances(config.services, spec.backends)
    weights_for(under_test, spec.weights)
    if scenario is None:
        return
    planned = [instance.name for instance in under_test + plan_side_instances(config.side_services, len(under_test))]
    for step in scenario.steps:
        if fault_kind(step.kind).acts_on_instance:
            scenario.instance_name(step, planned)
        elif step.kind == "scale" and len(config.services) != 1:
            raise SpecError(
                f"{scenario.path}: scale works on configs with one service; "
                f"{config.path} names {', '.join(config.services)}"
            )
