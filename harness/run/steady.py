"""Steady state: the probes, then load, then the algorithm's and the servers' claims on what was recorded.

Every verdict is made in ``harness.checks``; this module decides which checks the algorithm,
the config and the balancer call for, and gathers what they judge.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from harness.checks.distribution import EXACT_ORDER, counts_of, exact_cycle, order_not_kept, spread_matches
from harness.checks.errors import no_client_errors, no_counted_errors
from harness.checks.fault_rows import counts_together
from harness.checks.least_conn import AVOIDS_BUSY, avoids_busy_instance, busy_not_seen
from harness.checks.population import population_as_predicted
from harness.checks.schedule import smooth_weighted_round_robin
from harness.checks.stickiness import clients_not_pinned, clients_spread, each_client_on_one_instance, one_client_only
from harness.checks.verdict import Verdict, not_applicable
from harness.cluster import Cluster
from harness.load import probes
from harness.load.records import empty_frame
from harness.load.route import FixedRoute, Route
from harness.load.wrk import run_wrk
from harness.net import MAX_CLIENT_NETWORKS, ClientPopulation
from harness.run.context import RunContext
from harness.run.grpc_verdicts import grpc_verdicts
from harness.run.load import RunLoad
from harness.run.result import Measured
from harness.run.session_verdicts import session_verdicts
from harness.runtimes.base import Instance
from harness.server_claims import ServerClaimChecks

SEQUENTIAL_CYCLES = 4  # periods of the pick order checked request by request
# ... fewer for a long period, down to two: a thousand instances are two thousand requests
# one after another already.
SEQUENTIAL_BUDGET = 1000
POPULATION_PROBE_CLIENTS = 1000  # clients of a population asked one request each


def measure(context: RunContext, load: RunLoad, cluster: Cluster, timings: dict[str, float]) -> Measured:
    """The steady-state checks on ``cluster``, in the order a user would run them by hand."""
    instances = cluster.instances_under_test
    route = cluster.route
    verdicts: list[Verdict] = list(cluster.balancer.listen_checks())
    servers = ServerClaimChecks(
        context.server_claims, context.config, context.workers, context.zone, context.algorithm.avoids_busy
    )
    started = time.monotonic()
    verdicts += servers.before_load(cluster, instances, context.phase)
    timings["server_probes_s"] = time.monotonic() - started
    verdicts += _probes(context, route, instances, timings)
    population, instance_of = _population(context, route, cluster.instances_under_test)
    verdicts += population
    if context.spec.driver == "wrk":
        return _wrk(context, load, route, instances, timings, verdicts)
    frame, count = load.run(route, context.spec.duration, timings, lambda: cluster.instances_under_test)
    verdicts.append(no_client_errors(frame))
    verdicts += servers.after_load(frame, instances)
    verdicts += servers.failover_to_backup(cluster, instances, context.phase)
    counts = counts_of(frame.loc[frame["instance"] != "", "instance"].tolist())
    grpc = context.spec.workload.over_one_connection
    if not (grpc and context.kind.balances_connections):  # calls pinned by connection are no sample of picks
        verdicts += _spread(context, counts, instances)
    verdicts += session_verdicts(context, load, instances, context.spec.duration)
    verdicts += grpc_verdicts(context, frame, route, len(instances))
    if context.algorithm.sticky:
        verdicts.append(each_client_on_one_instance(frame))
        verdicts.append(clients_spread(frame, minimum=_spread_minimum(frame, instances, instance_of)))
    elif context.kind.balances_connections and not grpc:
        verdicts.append(clients_not_pinned(frame, len(instances)))
    return Measured(verdicts, frame, count)


def _probes(context: RunContext, route: Route, instances: list[Instance], timings: dict[str, float]) -> list[Verdict]:
    """Requests one at a time: the exact order where the algorithm has one, least_conn's busy instance."""
    verdicts = []
    together = counts_together(context.workers, context.zone)
    if context.algorithm.exact_order or _least_conn_with_weights(context, instances):
        context.phase("sequential requests")
        verdicts.append(_exact_order(context, route, instances) if together else order_not_kept(context.workers))
    if context.algorithm.avoids_busy and not together:
        verdicts.append(busy_not_seen(context.workers))
    elif context.algorithm.avoids_busy and context.spec.workload.over_one_connection:
        verdicts.append(not_applicable(AVOIDS_BUSY, "a route over HTTP/2 connections has no long request to hold"))
    elif context.algorithm.avoids_busy:
        context.phase("least_conn probe: one long request, then short ones")
        started = time.monotonic()
        verdicts.append(avoids_busy_instance(probes.least_conn_probe(route, instances)))
        timings["least_conn_probe_s"] = time.monotonic() - started
    return verdicts


def _spread_minimum(frame: pd.DataFrame, instances: list[Instance], instance_of: Callable[[str], str] | None) -> int:
    """Instances the load's clients must reach together: two, or as many as the model puts them on
    (clients of one /24 are one client to ip_hash). The load's clients are its own: those of
    workers that joined the run are theirs, not the population's."""
    if instance_of is None:
        return min(2, len(instances))
    senders = {client for client in frame["client"] if client}
    return max(1, min(2, len({instance_of(client) for client in senders} - {""})))


def _population(
    context: RunContext, route: Route, instances: list[Instance]
) -> tuple[list[Verdict], Callable[[str], str] | None]:
    """Where the model puts each client of the population, then one request from each (the first
    ``POPULATION_PROBE_CLIENTS`` of a larger one, its networks in turn); and the model, a client's
    instance by its address (None: the algorithm does not key on the client)."""
    model = context.kind.client_model(context.config, instances, context.weights_by_instance)
    if model is None:
        return [], None
    name, predict = model
    spec = context.spec
    population = spec.population or ClientPopulation(spec.users, min(spec.users, MAX_CLIENT_NETWORKS))
    clients = population.addresses()[:POPULATION_PROBE_CLIENTS]
    by_address = {instance.address: instance.name for instance in instances}

    def instance_of(client: str) -> str:
        return by_address.get(predict(client).exact or "", "")

    predicted = {client: instance_of(client) for client in clients}
    context.phase(f"population: one request from each of {len(clients):,} clients")
    observed = {client: probes.get(route, "/api/count", source=client, timeout=5.0).instance for client in clients}
    described = population.describe()
    if len(clients) < population.clients:
        described += f", {len(clients):,} of them probed"
    verdict = population_as_predicted(name, described, predicted, observed, [i.name for i in instances])
    return [verdict], instance_of


def _spread(context: RunContext, counts: dict[str, int], instances: list[Instance]) -> list[Verdict]:
    expected = context.expected_shares(instances)
    if expected is None:
        return []
    if context.server_claims.backup_takes_overflow:
        reason = "every primary has max_conns: the backup takes what they cannot, a share the load sets"
        return [not_applicable(f"spread under load matches {context.algorithm.spread} shares", reason)]
    check = f"spread under load matches {context.algorithm.spread} shares"
    return [spread_matches(counts, expected, check=check, alpha=context.spec.false_alarm_rate)]


def _wrk(
    context: RunContext,
    load: RunLoad,
    route: Route,
    instances: list[Instance],
    timings: dict[str, float],
    verdicts: list[Verdict],
) -> Measured:
    """Capacity load with wrk: the counts per instance and the statuses are all there is to check."""
    assert isinstance(route, FixedRoute)  # the spec refuses wrk for client-side balancing
    spec = context.spec
    context.phase(f"load: wrk, {spec.users} connections for {spec.duration:g} s")
    started = time.monotonic()
    wrk = run_wrk(route.url, route.path_for("/api/count"), spec.users, spec.duration, headers=route.headers)
    timings["load_s"] = time.monotonic() - started
    load.model = {
        "model": "wrk", "connections": max(spec.users, 2), "requests_per_s": wrk.requests_per_s,
        "latency_ms": wrk.latency_ms, "statuses": wrk.statuses, "socket_errors": wrk.socket_errors,
    }  # fmt: skip
    context.journal.record("load", requests=wrk.requests, **load.model)
    verdicts = [*verdicts, no_counted_errors(wrk.requests, wrk.failed, wrk.statuses, wrk.socket_errors)]
    counts = dict(wrk.per_instance)
    verdicts += _spread(context, counts, instances)
    if context.algorithm.sticky:
        verdicts.append(one_client_only())
    return Measured(verdicts, empty_frame(), wrk.requests, counts)


def _least_conn_with_weights(context: RunContext, instances: list[Instance]) -> bool:
    """least_conn over weighted servers where the balancer breaks ties by weight (nginx): one
    request at a time ties every server at no connection, so sequential requests follow the
    weighted order."""
    if context.algorithm.name != "least_conn" or not context.kind.least_conn_ties_by_weight:
        return False
    return len({weight for _, weight in context.peer_weights(instances)}) > 1


def _exact_order(context: RunContext, route: Route, instances: list[Instance]) -> Verdict:
    peers = context.peer_weights(instances)
    if context.algorithm.spread == "even":
        peers = [(name, 1) for name, _ in peers]
    unless = context.kind.exact_order_unless(weighted=len({weight for _, weight in peers}) > 1)
    if unless is not None:
        return not_applicable(EXACT_ORDER, unless)
    period = smooth_weighted_round_robin(peers)
    cycles = max(2, min(SEQUENTIAL_CYCLES, SEQUENTIAL_BUDGET // len(period)))
    responses = probes.sequential(route, cycles * len(period))
    return exact_cycle([response.instance for response in responses], period, check=EXACT_ORDER)
