"""What happened to each fault of a scenario: the record the timeline keeps and the checks read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRecord:
    """What happened to one fault step, with wall-clock times (seconds since the epoch)."""

    index: int
    kind: str
    description: str
    instance: str
    address: str
    planned_at: float
    injected_at: float | None = None
    inject_returned_at: float | None = None  # the fault acted somewhere between the two
    rolled_back_at: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    planned_rollback: bool = False  # the scenario set a rollback time; else it came at the end of the load
    skipped: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.injected_at is not None and self.rolled_back_at is None
