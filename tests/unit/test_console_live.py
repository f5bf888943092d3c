"""The Backends console's state: what one refresh of the page reads is always consistent."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.console import live as live_module
from harness.console.live import LiveBackends
from harness.net import LOOPBACK, free_port
from harness.runtimes.base import Instance


@dataclass
class StandInCluster:
    instances: list[Instance] = field(default_factory=list)

    def instance(self, name: str) -> Instance:
        return next(instance for instance in self.instances if instance.name == name)


def page_view(live: LiveBackends, name: str) -> tuple[str, list[str]]:
    """What a refresh reads, in the order /backends/data reads it: the table, then the markers."""
    fault = next(row.fault for row in live.snapshot() if row.instance == name)
    return fault, [marker["action"] for marker in live.series()["markers"]]


def test_the_table_never_shows_a_fault_state_before_its_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on the control port: the row's "active" reads as unknown at once.
    closed = free_port()
    cluster = StandInCluster([Instance("api-gateway-1", "api-gateway", LOOPBACK, free_port(), closed, 0)])
    live = LiveBackends(cluster, health=lambda instances: {})  # type: ignore[arg-type]
    seen_during: list[tuple[str, tuple[str, list[str]]]] = []

    class RecordingFault:
        """Looks at the page while the fault is being injected and rolled back (a restart takes seconds)."""

        def inject(self, cluster: object, instance_name: str) -> None:
            seen_during.append(("inject", page_view(live, instance_name)))

        def rollback(self, cluster: object, instance_name: str) -> None:
            seen_during.append(("rollback", page_view(live, instance_name)))

    monkeypatch.setattr(live_module, "make_fault", lambda kind, parameters, where: RecordingFault())

    live.inject("kill", "api-gateway-1")
    after_inject = page_view(live, "api-gateway-1")
    live.rollback("api-gateway-1")
    after_rollback = page_view(live, "api-gateway-1")

    assert seen_during == [("inject", ("", [])), ("rollback", ("kill", ["inject"]))], seen_during
    assert after_inject == ("kill", ["inject"]), after_inject
    assert after_rollback == ("", ["inject", "rollback"]), after_rollback
