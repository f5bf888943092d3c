"""What every balancer and every balancer config offers to a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.checks.verdict import Verdict
from harness.load.route import Route
from harness.runtimes.base import Instance


@dataclass(frozen=True)
class Peer:
    """One server line of the balanced group under test, before expansion into instances."""

    service: str
    weight: int
    serves: bool  # False for backup, down or disabled servers: they take no traffic while others live
    role: str = "primary"  # "backup" (takes over when every primary is down) or "down" (never used)


@dataclass(frozen=True)
class ServerClaims:
    """What a config's server parameters claim beyond its algorithm, each checked in a run.

    Services are named as in the config; every instance of a service inherits its line's claims.
    """

    where: str = ""  # the group's file and line, for verdicts
    down: tuple[str, ...] = ()  # never get a request
    primary_services: tuple[str, ...] = ()  # the services that serve while every one is up
    backup: tuple[str, ...] = ()  # get nothing while a primary serves
    max_conns: tuple[tuple[str, int], ...] = ()  # never more than N requests in flight at one instance
    hash_key: str | None = None  # one key, one instance, whatever client sends it
    consistent: bool = False  # removing an instance moves only the keys it held
    shared_counts: bool = False  # the workers share counts (nginx's zone), so limits hold for all together
    avoids_busy: bool = False  # new requests avoid an instance holding a long one (random two least_conn)
    keepalive: int | None = None  # idle upstream connections kept per worker: requests reuse connections
    recovery_s: float = 10.0  # how long a failed primary stays out (nginx: its fail_timeout)

    @property
    def backup_takes_overflow(self) -> bool:
        """Every primary has a max_conns: once all are full, nginx sends requests to the backup."""
        limited = {service for service, _ in self.max_conns}
        return bool(self.backup) and bool(limited) and not (set(self.primary_services) - limited)

    detect_s: float = 0.0  # how long until a killed primary is out (HAProxy: its checks; nginx: at once)


class OneGroup:
    """Defaults of a config with one group and nothing beside it: no other group's services, no
    UNIX sockets, no TLS to the instances (client-side, kube-proxy and Caddy configs)."""

    @property
    def side_services(self) -> list[str]:
        return []

    @property
    def socket_services(self) -> list[str]:
        return []

    @property
    def tls_services(self) -> list[str]:
        return []

    @property
    def grpc_services(self) -> list[str]:
        return []

    @property
    def speaks_grpc(self) -> bool:
        return False

    @property
    def http2_services(self) -> list[str]:
        return []

    @property
    def speaks_http2(self) -> bool:
        return False

    @property
    def offers_http2(self) -> bool:
        return False

    def routed_groups(self) -> list[str]:
        return []


class BalancerConfig(Protocol):
    """A user's config for one balancer, parsed."""

    balancer: str  # "nginx", "haproxy", "client"
    path: Path

    @property
    def services(self) -> list[str]:
        """The service names the config's servers refer to, in config order, each once."""
        ...

    def inferred_algorithm(self) -> str:
        """The algorithm the config asks for, named as ``harness bench --algo`` names it."""
        ...

    @property
    def side_services(self) -> list[str]:
        """Services of the config outside the group under test: one instance each, so their routes answer."""
        ...

    @property
    def socket_services(self) -> list[str]:
        """Services the config reaches on a UNIX socket: their instances serve on one in the run."""
        ...

    @property
    def tls_services(self) -> list[str]:
        """Services the balancer speaks TLS to: their instances serve TLS with the run's certificate."""
        ...

    @property
    def grpc_services(self) -> list[str]:
        """Services the balancer passes gRPC to: their instances serve gRPC too, on a port of its own."""
        ...

    @property
    def speaks_grpc(self) -> bool:
        """The route under test carries gRPC (HTTP/2), so the load calls it with a gRPC workload."""
        ...

    @property
    def http2_services(self) -> list[str]:
        """Services whose instances a client's HTTP/2 connection reaches whole (an L4 balancer's):
        their instances serve plain HTTP/2 too, on a port of its own."""
        ...

    @property
    def speaks_http2(self) -> bool:
        """The route under test takes plain HTTP over HTTP/2 only (nginx ``listen 80 http2``, HAProxy
        ``bind :80 proto h2``, a Service's h2c port), so the load sends it with the http2 workload."""
        ...

    @property
    def offers_http2(self) -> bool:
        """The route under test takes HTTP/2, only or beside HTTP/1.1 (by ALPN over TLS): the http2
        workload may send to it."""
        ...

    def routed_groups(self) -> list[str]:
        """Every group (nginx upstream, HAProxy backend) some route of the config reaches, in config order."""
        ...

    def claims(self) -> str:
        """What the group under test asks for, in one line with where it is written; empty when obvious."""
        ...

    def server_claims(self) -> ServerClaims:
        """The claims of the group's server parameters (backup, down, max_conns, hash key)."""
        ...

    def peers(self) -> list[Peer]:
        """The server lines of the balanced group under test, in config order."""
        ...

    def effective_workers(self, requested: int | None) -> int:
        """How many processes each keep their own balancing state."""
        ...

    def shares_counts(self) -> bool:
        """Whether the config itself makes workers share failure and connection counts."""
        ...


class Balancer(Protocol):
    name: str

    @property
    def url(self) -> str:
        """Where clients send requests, ``http://127.0.0.1:PORT``."""
        ...

    @property
    def route(self) -> Route:
        """How clients reach an instance: the balancer's address, or their own pick."""
        ...

    @property
    def config_path(self) -> Path:
        """The generated config the balancer runs, inside the run directory."""
        ...

    @property
    def access_log(self) -> Path:
        """The balancer's own record of every request."""
        ...

    @property
    def pid(self) -> int | None:
        """The balancer's main process while it runs."""
        ...

    def start(self, instances: Sequence[Instance]) -> None:
        """Renders and validates the config, starts the balancer, waits until it accepts."""
        ...

    def reload(self, instances: Sequence[Instance]) -> float:
        """Points the running balancer at ``instances`` gracefully; returns the seconds it took."""
        ...

    def stop(self) -> None:
        """Stops the balancer; safe to call twice."""
        ...

    def listen_checks(self) -> list[Verdict]:
        """Checks of the config's other listens (a server that only redirects answers its redirect)."""
        ...

    def reported_version(self) -> str | None:
        """The version the running balancer reports of itself (nginx in a pod); None: look up the binary's."""
        ...


class BalancerDefaults:
    """What a balancer without more to say answers: no other listens to check, and its version is
    the binary's on this machine."""

    def listen_checks(self) -> list[Verdict]:
        return []

    def reported_version(self) -> str | None:
        return None
