"""What every balancer offers to a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from harness.runtimes.base import Instance


class Balancer(Protocol):
    name: str

    @property
    def url(self) -> str:
        """Where clients send requests, ``http://127.0.0.1:PORT``."""
        ...

    @property
    def config_path(self) -> Path:
        """The generated config the balancer runs, inside the run directory."""
        ...

    def start(self, instances: Sequence[Instance]) -> None:
        """Renders and validates the config, starts the balancer, waits until it accepts."""
        ...

    def stop(self) -> None:
        """Stops the balancer; safe to call twice."""
        ...
