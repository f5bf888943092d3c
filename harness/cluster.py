"""A balancer over N instances, up and ready, as one context manager (open one with
``harness.plan.open_cluster``).

``start()`` returns once every instance accepts connections, the balancer accepts
connections, and every instance under test has answered through the balancer (so no
traffic meets the start-up trap where nginx marks not-yet-listening peers down).
``stop()`` stops the balancer first, then the instances, and is safe to call twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerSettings
from harness.balancers.registry import kind_of
from harness.balancers.tls import RunCertificates
from harness.errors import SpecError
from harness.load import probes
from harness.load.route import Route
from harness.net import LOOPBACK
from harness.results.store import Journal
from harness.runtimes.base import Instance, InstanceTls, Runtime
from harness.runtimes.local import LocalProcessRuntime
from harness.runtimes.sockets import SocketFolder
from harness.topology import (
    on_sockets,
    plan_instances,
    plan_side_instances,
    weights_for,
    with_grpc,
    with_http2,
    with_tls,
)


class Cluster:
    def __init__(
        self,
        config: BalancerConfig,
        run_dir: Path,
        backends: int | None = None,
        workers: int = 1,
        zone: bool = False,
        weights: Sequence[int] | None = None,
        port: int | None = None,
        journal: Journal | None = None,
        runtime: Runtime | None = None,
        address: str = LOOPBACK,
    ) -> None:
        """``address``: where the balancer's route listens (an address other machines reach, for workers
        that join the run)."""
        self.config = config
        self.specs = plan_instances(config.services, backends)
        self.weights_by_instance = weights_for(self.specs, weights)
        self.specs += plan_side_instances(config.side_services, len(self.specs))
        self.run_dir = run_dir
        self.journal = journal or Journal(run_dir / "journal.jsonl")
        # Local processes unless the caller brings another runtime (a fake one in unit tests).
        self.runtime: Runtime = runtime or LocalProcessRuntime(run_dir / "instances")
        # `server unix:/run/app.sock`: those instances serve on a socket in the run (local processes
        # only; in containers and pods they keep the TCP address the balancer is pointed at).
        self.sockets: SocketFolder | None = None
        traits = self.runtime.traits
        if config.socket_services and traits.serves_unix_sockets:
            self.sockets = SocketFolder(run_dir / "sockets", max(len(spec.name) for spec in self.specs) + 8)
            self.specs = on_sockets(self.specs, config.socket_services, self.sockets.path)
        # `proxy_pass https://app`, `server app app:443 ssl`: those instances serve TLS with a certificate
        # of the run's own CA for their service and group names (local processes only, as for sockets).
        self.instance_tls: InstanceTls | None = None
        if config.tls_services and traits.serves_tls:
            authority = RunCertificates(run_dir / "tls-instances")
            chain, key = authority.issue([*config.tls_services, *config.routed_groups()])
            self.instance_tls = InstanceTls(str(chain), str(key), str(authority.ca_file))
            self.specs = with_tls(self.specs, config.tls_services, self.instance_tls)
        if config.grpc_services:
            self.specs = with_grpc(self.specs, config.grpc_services)
        if config.http2_services:
            self.specs = with_http2(self.specs, config.http2_services)
        # A runtime of containers runs the balancer in a container too; a cluster, in the cluster.
        container = self.runtime.balancer_container()
        settings = BalancerSettings(workers, zone, self.weights_by_instance, port, container, address)
        self.balancer: Balancer = kind_of(config.balancer).make(config, run_dir, settings, self.runtime)
        self.instances: list[Instance] = []
        self.ever_started: dict[str, Instance] = {}  # every instance of the run, latest process each
        # When the balancer started and each reload began, with the group's instances it was given:
        # a replay of its picks models each config the balancer ran.
        self.generations: list[tuple[float, list[Instance]]] = []
        self.timings: dict[str, float] = {}

    @property
    def instances_under_test(self) -> list[Instance]:
        """The running instances of the group the run judges (not those of the config's other upstreams)."""
        services = set(self.config.services)
        return [instance for instance in self.instances if instance.service in services]

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def route(self) -> Route:
        return self.balancer.route

    def start(self) -> Cluster:
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.instances = self.runtime.start(self.specs)
        self.ever_started.update((instance.name, instance) for instance in self.instances)
        self.journal.record("instances", pids=self.runtime.pids, instances=[i.__dict__ for i in self.instances])
        self.timings["instances_ready_s"] = time.monotonic() - started
        self.generations.append((time.time(), self.instances_under_test))
        self.balancer.start(self.instances)
        self.journal.record("balancer", pids=[self.balancer.pid], url=self.balancer.url)
        under_test = self.instances_under_test
        others = [instance for instance in self.instances if instance not in under_test]
        probes.answers_through(self.balancer.route, under_test, others=others)
        self.timings["bring_up_s"] = time.monotonic() - started
        return self

    def instance(self, name: str) -> Instance:
        """The running instance called ``name`` (its current process after a restart)."""
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(f"no instance named {name!r}; instances: {', '.join(i.name for i in self.instances)}")

    def restart(self, name: str) -> Instance:
        """Starts instance ``name`` again on its address and ports; the balancer config is unchanged."""
        restarted = self.runtime.restart(self.instance(name))
        self.instances = [restarted if i.name == name else i for i in self.instances]
        self.ever_started[name] = restarted
        if self.runtime.traits.addresses_change_on_restart:
            self.generations.append((time.time(), self.instances_under_test))
            self.balancer.reload(self.instances)  # a balancer that resolved the old address learns the new one
        self.journal.record("instance restarted", name=name, pids=[restarted.pid])
        return restarted

    def scale(self, count: int) -> float:
        """Grows or shrinks to ``count`` instances under load; returns the reload's seconds.

        New instances start (and listen) before nginx is reloaded to include them; removed
        ones leave nginx's config first and stop only after the old workers have finished
        their requests, so a scale by itself costs no request.
        """
        if len(self.config.services) != 1:
            raise SpecError(
                "scale works on configs with one service; this one names " + ", ".join(self.config.services)
            )
        wanted = plan_instances(self.config.services, count)
        if self.sockets is not None:
            wanted = on_sockets(wanted, self.config.socket_services, self.sockets.path)
        if self.instance_tls is not None:
            wanted = with_tls(wanted, self.config.tls_services, self.instance_tls)
        wanted = with_http2(with_grpc(wanted, self.config.grpc_services), self.config.http2_services)
        current = {instance.name for instance in self.instances}
        added = self.runtime.start([spec for spec in wanted if spec.name not in current])
        kept = [instance for instance in self.instances if instance.name in {spec.name for spec in wanted}]
        removed = [instance for instance in self.instances if instance not in kept]
        self.instances = kept + added
        self.ever_started.update((instance.name, instance) for instance in added)
        self.generations.append((time.time(), self.instances_under_test))
        seconds = self.balancer.reload(self.instances)
        for instance in removed:
            self.runtime.stop(instance)
        self.journal.record(
            "scaled", to=count, added=[i.name for i in added], removed=[i.name for i in removed],
            pids=[i.pid for i in added], reload_s=round(seconds, 3),
        )  # fmt: skip
        return seconds

    def stop(self) -> None:
        try:
            self.balancer.stop()
        finally:
            try:
                self.runtime.close()
            finally:
                if self.sockets is not None:
                    self.sockets.close()
                self.journal.record("stopped")

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
