"""What every runtime offers: start instances, signal them, stop them, clean up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class RuntimeTraits:
    """What a runtime can and cannot do, declared once so the core asks instead of guessing."""

    addresses_change_on_restart: bool = False  # a restarted instance has another address: reload the balancer
    serves_unix_sockets: bool = False  # an instance given a socket path serves on it too
    serves_tls: bool = False  # an instance given a certificate serves TLS with it
    balancer_in_cluster: bool = False  # the balancer runs as the cluster's own Deployment
    no_blackhole_because: str | None = None  # why the blackhole fault cannot run here, when it cannot


class BalancerContainer(Protocol):
    """Runs a balancer's command in a container instead of as a process of this host."""

    def command(self, argv: list[str], run_dir: Path, name: str) -> list[str]:
        """The command that runs ``argv`` in a container in the foreground, ``run_dir`` mounted."""
        ...

    def master_pid(self, name: str) -> int | None:
        """The host pid of the container's first process (the balancer's master)."""
        ...


@runtime_checkable
class Runtime(Protocol):
    traits: RuntimeTraits

    def balancer_container(self) -> BalancerContainer | None:
        """Where the balancer runs when not as a process of this host: a container of the runtime's."""
        ...

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
