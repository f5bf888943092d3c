"""What every runtime offers: start instances, signal them, stop them, clean up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.backends.instance import Instance, InstanceSpec, InstanceTls

__all__ = ["Instance", "InstanceSpec", "InstanceTls", "Runtime", "RuntimeTraits"]


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
