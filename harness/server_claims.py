"""Probing what a config's server parameters claim, on a running cluster.

The claims come from the config (``ServerClaims``: down, backup, max_conns, the hash key and
whether it is consistent); each is probed with requests of its own before the load, or
judged on the load's records after it. The verdicts themselves are pure functions in
``checks.servers``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Sequence

import pandas as pd

from harness.backends import control
from harness.balancers.base import BalancerConfig, ServerClaims
from harness.checks.distribution import counts_of
from harness.checks.least_conn import avoids_busy_instance
from harness.checks.servers import (
    backup_takes_over,
    connections_reused,
    each_key_on_one_instance,
    idle_instances,
    in_flight_within_limits,
    keys_spread,
    only_removed_keys_move,
    primaries_take_back,
)
from harness.checks.verdict import Verdict, not_applicable
from harness.cluster import Cluster
from harness.errors import StartupError
from harness.load import probes
from harness.load.keys import KeyPlan, key_plan
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance

Phase = Callable[[str], None]
KEYS = 32  # distinct key values a hash probe sends; see keys_spread for the false-alarm rate


class ServerClaimChecks:
    def __init__(
        self, claims: ServerClaims, config: BalancerConfig, workers: int, zone: bool, algorithm_avoids_busy: bool
    ) -> None:
        """``algorithm_avoids_busy``: the algorithm's own checks already probe a busy instance."""
        self.claims = claims
        self.config = config
        self.probe_busy = claims.avoids_busy and not algorithm_avoids_busy
        # Without a shared zone each nginx worker keeps its own count of a server's connections.
        self.counting_processes = 1 if (zone or claims.shared_counts) else workers

    def before_load(self, cluster: Cluster, instances: Sequence[Instance], phase: Phase) -> list[Verdict]:
        verdicts: list[Verdict] = []
        if self.claims.hash_key:
            phase(f"hash probe: {KEYS} values of {self.claims.hash_key}")
            verdicts += self._hash(cluster, instances)
        if self.probe_busy and self.counting_processes > 1:
            reason = f"{self.counting_processes} workers without a shared zone each count only their own connections"
            verdicts.append(not_applicable("short requests avoid the busy instance", reason))
        elif self.probe_busy:
            phase("least_conn probe: one long request, then short ones")
            verdicts.append(avoids_busy_instance(probes.least_conn_probe(cluster.route, instances)))
        if self.claims.max_conns:
            phase("max_conns probe: long requests beyond the limits")
            verdicts.append(self._max_conns(cluster, instances))
        return verdicts

    def after_load(self, frame: pd.DataFrame, instances: Sequence[Instance]) -> list[Verdict]:
        """down and backup servers got nothing while every primary served; keepalive reused connections."""
        verdicts = self._idle(frame, instances)
        if self.claims.keepalive:
            states = {instance.name: control.state(instance) for instance in instances}
            served = {name: int(state["served"]) for name, state in states.items()}
            opened = {name: int(state.get("connections", 0)) for name, state in states.items()}
            verdicts.append(connections_reused(served, opened, self.claims.keepalive, self.claims.where))
        return verdicts

    def failover_to_backup(self, cluster: Cluster, instances: Sequence[Instance], phase: Phase) -> list[Verdict]:
        """Kills every primary: the backup answers; starts them again: they take the traffic back.

        Runs last, after the load: the primaries stay marked failed for their fail_timeout.
        """
        backups = [i.name for i in instances if i.service in self.claims.backup]
        idle = set(self.claims.backup + self.claims.down)
        primaries = [i for i in instances if i.service not in idle]
        if not backups or not primaries:
            return []
        phase("backup probe: every primary killed, then started again")
        for instance in primaries:
            cluster.runtime.signal(instance, signal.SIGKILL)
        # A balancer with active checks takes the primaries out only when its checks have failed.
        taking_over = WaitStrategy("a backup to answer", timeout=self.claims.detect_s + 3.0, interval=0.1)
        with contextlib.suppress(StartupError):
            taking_over.wait(lambda: True if self._answered_by(cluster, set(backups)) else None)
        answers = []
        for _ in range(10):
            try:
                response = probes.get(cluster.route, "/api/count", timeout=5.0)
                answers.append((response.status, response.instance))
            except OSError:
                answers.append((0, ""))
        verdicts = [backup_takes_over(answers, backups)]
        restarted = [cluster.restart(instance.name) for instance in primaries]
        names = {instance.name for instance in restarted}
        started = time.monotonic()
        limit = self.claims.recovery_s + 2.0
        strategy = WaitStrategy("a primary to answer again", timeout=limit + 3.0, interval=0.2)
        try:
            strategy.wait(lambda: True if probes.get(cluster.route, "/api/count").instance in names else None)
            seconds: float | None = time.monotonic() - started
        except StartupError:
            seconds = None
        verdicts.append(primaries_take_back(seconds, limit, self.claims.where))
        return verdicts

    @staticmethod
    def _answered_by(cluster: Cluster, names: set[str]) -> bool:
        try:
            return probes.get(cluster.route, "/api/count", timeout=5.0).instance in names
        except OSError:
            return False

    def _idle(self, frame: pd.DataFrame, instances: Sequence[Instance]) -> list[Verdict]:
        roles = {"down": set(self.claims.down), "backup": set(self.claims.backup)}
        idle = {
            instance.name: role
            for instance in instances
            for role, services in roles.items()
            if instance.service in services
        }
        if not idle:
            return []
        if self.claims.backup_takes_overflow:
            idle = {name: role for name, role in idle.items() if role != "backup"}
            reason = (
                f"every primary has max_conns ({self.claims.where}): nginx sends requests to the backup while "
                "every primary is full; the replay judges each of those picks"
            )
            verdicts = [not_applicable("backup server gets no request while a primary serves", reason)]
            served = frame.loc[frame["instance"] != "", "instance"].tolist()
            return verdicts + idle_instances(counts_of(served), idle, len(frame), self.claims.where)
        served = frame.loc[frame["instance"] != "", "instance"].tolist()
        return idle_instances(counts_of(served), idle, len(frame), self.claims.where)

    def _hash(self, cluster: Cluster, instances: Sequence[Instance]) -> list[Verdict]:
        assert self.claims.hash_key is not None
        plan = key_plan(self.claims.hash_key)
        if not plan.varies:
            reason = f"the harness cannot choose {self.claims.hash_key} per request"
            return [not_applicable(f"one {plan.key}, one instance", reason)]
        picks = probes.key_probe(cluster.route, plan, keys=KEYS)
        clients = 1 if plan.follows_client else 3
        verdicts = [
            each_key_on_one_instance(picks, plan.key, clients),
            keys_spread(picks, len(instances), plan.key),
        ]
        # Plain hash too: the replay then shows how many keys each change of peers moves.
        verdicts += self._consistent(cluster, plan, picks)
        return verdicts

    def _consistent(self, cluster: Cluster, plan: KeyPlan, picks: dict[str, list[str]]) -> list[Verdict]:
        """Removes the last instance and adds it back, the key probe before and between; with
        ``consistent``, keys the removed instance did not hold must stay."""
        check = "consistent hashing moves only the removed instance's keys"
        if len(self.config.services) != 1 or len(cluster.instances_under_test) < 3:
            reason = "needs one service of at least 3 instances, to remove one"
            return [not_applicable(check, reason)] if self.claims.consistent else []
        before = {key: instances[0] for key, instances in picks.items()}
        count = len(cluster.instances_under_test)
        removed = cluster.instances_under_test[-1].name
        cluster.scale(count - 1)
        try:
            after_picks = probes.key_probe(cluster.route, plan, keys=KEYS, clients=1)
        finally:
            cluster.scale(count)
        probes.key_probe(cluster.route, plan, keys=KEYS, clients=1)  # the same keys once it is back
        if not self.claims.consistent:
            return []
        after = {key: instances[0] for key, instances in after_picks.items()}
        return [only_removed_keys_move(before, after, removed, self.claims.hash_key or "key")]

    def _max_conns(self, cluster: Cluster, instances: Sequence[Instance]) -> Verdict:
        per_service = dict(self.claims.max_conns)
        limits = {
            instance.name: per_service[instance.service] * self.counting_processes
            for instance in instances
            if instance.service in per_service
        }
        idle = set(self.claims.backup + self.claims.down)
        serving = {i.service for i in instances if i.service not in idle}
        capacity = sum(limits[i.name] for i in instances if i.name in limits and i.service in serving)
        unlimited = [i for i in instances if i.service in serving and i.service not in per_service]
        if unlimited:
            # Servers without a limit take any number: the long requests could all wait there.
            capacity += len(unlimited)
        probe = probes.in_flight_probe(cluster.route, instances, count=capacity + 2)
        return in_flight_within_limits(probe.peaks, limits, probe.statuses, probe.sent, self.claims.where)
