"""A backend instance as the rest of the harness names it: the spec that starts one, the one running.

These are the words every layer shares (the runtimes start them, the balancers point at them,
the control client and the checks address them), so they live below all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceTls:
    """The certificate an instance serves TLS with (``proxy_pass https://...``), and the CA that signed it."""

    certificate: str
    key: str
    ca_file: str


@dataclass(frozen=True)
class InstanceSpec:
    """An instance to start: its name, the service it belongs to, the address it binds."""

    name: str
    service: str
    host: str
    port: int = 0  # 0: the kernel picks a free port
    control_port: int = 0
    socket: str = ""  # a UNIX socket the instance serves on too (``server unix:...`` in the user's config)
    tls: InstanceTls | None = None  # serve TLS on the service's sockets
    grpc: bool = False  # serve gRPC too (``grpc_pass``, a Service's gRPC port), on a port of its own
    grpc_port: int = 0  # 0: the kernel picks
    http2: bool = False  # serve plain HTTP over HTTP/2 too (a Service's h2c port), on a port of its own
    http2_port: int = 0  # 0: the kernel picks


@dataclass(frozen=True)
class Instance:
    """A running instance, as the balancer and the checks see it."""

    name: str
    service: str
    host: str
    port: int
    control_port: int
    pid: int
    socket: str = ""  # the UNIX socket the balancer reaches it on, when it has one
    tls: InstanceTls | None = None  # it serves TLS, with this certificate
    grpc_port: int = 0  # where it serves gRPC (h2c); 0: it does not
    http2_port: int = 0  # where it serves plain HTTP/2 (h2c, or h2 with its TLS); 0: it does not

    @property
    def address(self) -> str:
        """``host:port`` (or ``unix:PATH``) exactly as nginx writes it in ``$upstream_addr``: its
        gRPC or HTTP/2 server's, when it serves one (its service is passed that, not HTTP/1.1)."""
        if self.socket:
            return f"unix:{self.socket}"
        return f"{self.host}:{self.grpc_port or self.http2_port or self.port}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}/control"

    def same_place(self) -> InstanceSpec:
        """The spec that starts this instance again on the same address and ports."""
        return InstanceSpec(
            self.name, self.service, self.host, self.port, self.control_port, self.socket, self.tls,
            self.grpc_port > 0, self.grpc_port, self.http2_port > 0, self.http2_port,
        )  # fmt: skip


def by_service(instances: Iterable[Instance]) -> dict[str, list[Instance]]:
    """The instances of each service, in the order given: what a config's group of servers expands into."""
    grouped: dict[str, list[Instance]] = {}
    for instance in instances:
        grouped.setdefault(instance.service, []).append(instance)
    return grouped
