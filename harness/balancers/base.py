"""What every balancer and every balancer config offers to a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.load.route import Route
from harness.runtimes.base import Instance


@dataclass(frozen=True)
class Peer:
    """One server line of the balanced group under test, before expansion into instances."""

    service: str
    weight: int
    serves: bool  # False for backup, down or disabled servers: they take no traffic while others live


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
