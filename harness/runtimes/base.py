"""What every runtime offers: start instances, signal them, stop them, clean up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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

    @property
    def address(self) -> str:
        """``host:port`` (or ``unix:PATH``) exactly as nginx writes it in ``$upstream_addr``."""
        return f"unix:{self.socket}" if self.socket else f"{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}/control"

    def same_place(self) -> InstanceSpec:
        """The spec that starts this instance again on the same address and ports."""
        return InstanceSpec(self.name, self.service, self.host, self.port, self.control_port, self.socket, self.tls)


@runtime_checkable
class Runtime(Protocol):
    @property
    def pids(self) -> list[int]:
        """Every process the runtime started and still owns, for the run's journal."""
        ...

    def start(self, specs: Sequence[InstanceSpec]) -> list[Instance]:
        """Starts the instances and returns once every one accepts connections."""
        ...

    def restart(self, instance: Instance) -> Instance:
        """Starts the instance again on the same address and ports (after a kill or stop)."""
        ...

    def signal(self, instance: Instance, signum: int) -> None:
        """Sends a signal to the instance's process (faults use SIGKILL, SIGSTOP, ...)."""
        ...

    def stop(self, instance: Instance) -> None:
        """Stops one instance; safe to call for an instance that already exited."""
        ...

    def close(self) -> None:
        """Stops every instance this runtime started; safe to call twice."""
        ...
