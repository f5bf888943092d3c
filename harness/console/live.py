"""The live console's state: requests per instance as they happen, faults injected from the UI.

:class:`LiveBackends` hears every request (Locust's ``request`` event in the process that
sends them, or the records distributed workers ship), counts per instance and per second,
and injects and rolls back the harness's faults on the running cluster, marking each on
the time line. ``snapshot()`` is what the Backends tab shows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from harness.backends import control
from harness.cluster import Cluster
from harness.console.health import HealthView, health_view
from harness.errors import HarnessError
from harness.faults.kinds import Fault, make_fault
from harness.load.records import RequestRecorder

# The faults the console offers, with the parameters a button injects.
CONSOLE_FAULTS: dict[str, dict[str, Any]] = {
    "kill": {},
    "hang": {},
    "slow": {"delay_ms": 500.0},
    "fail": {"fail_rate": 1.0, "fail_status": 503},
    "unhealthy": {},
}
SERIES_SECONDS = 300  # the time line keeps the last five minutes


@dataclass(frozen=True)
class Marker:
    at: float
    action: str  # "inject" or "rollback"
    kind: str
    instance: str


@dataclass(frozen=True)
class BackendRow:
    instance: str
    address: str
    requests: int
    share: float
    expected_share: float | None
    errors: int
    active: int | None  # requests in the instance right now; None when it does not answer
    sessions: int | None  # WebSocket, SSE and stream sessions open on it right now; None: no answer
    health: str
    fault: str


class LiveBackends:
    def __init__(
        self, cluster: Cluster, expected: Mapping[str, float] | None = None, health: HealthView | None = None
    ) -> None:
        self.cluster = cluster
        self.expected = dict(expected or {})
        self.health = health or health_view(cluster.balancer)
        self.markers: list[Marker] = []
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._series: dict[int, Counter[str]] = defaultdict(Counter)
        self._faults: dict[str, tuple[str, Fault]] = {}
        self._lock = threading.Lock()
        self._recorder = RequestRecorder()

    # Requests

    def on_request(self, **event: Any) -> None:
        """A listener for Locust's ``request`` event."""
        self._recorder.on_request(**event)
        self.add_records(self._recorder.rows)
        self._recorder.rows = []

    def add_records(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Counts request records (``RequestRecorder`` rows), from this process or a worker's report."""
        with self._lock:
            for row in rows:
                instance = row["instance"] or "(no instance)"
                self._requests[instance] += 1
                if not 200 <= int(row["status"]) < 400:
                    self._errors[instance] += 1
                self._series[int(row["time"] or time.time())][instance] += 1

    def reset(self, **_: Any) -> None:
        """Locust's Reset Stats: the counts start again; markers and faults stay."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._series.clear()

    # Faults

    def inject(self, kind: str, instance: str) -> Marker:
        """Injects fault ``kind`` on ``instance``; KeyError for an unknown instance, SpecError for a kind."""
        self.cluster.instance(instance)  # an unknown name fails before anything changes
        if instance in self._faults:
            self.rollback(instance)
        fault = make_fault(kind, CONSOLE_FAULTS.get(kind, {}), "the console")
        fault.inject(self.cluster, instance)
        # The marker first: a page that shows the fault in the table also finds it on the time line.
        marker = self._mark("inject", kind, instance)
        self._faults[instance] = (kind, fault)
        return marker

    def rollback(self, instance: str) -> Marker | None:
        if instance not in self._faults:
            return None
        kind, fault = self._faults[instance]
        # The fault stays listed until its rollback is done (a killed instance is restarted
        # and awaited meanwhile), and the marker is there before the table says "-".
        fault.rollback(self.cluster, instance)
        marker = self._mark("rollback", kind, instance)
        del self._faults[instance]
        return marker

    def rollback_all(self) -> None:
        for instance in list(self._faults):
            self.rollback(instance)

    def _mark(self, action: str, kind: str, instance: str) -> Marker:
        marker = Marker(time.time(), action, kind, instance)
        self.markers.append(marker)
        return marker

    # What the UI reads

    def snapshot(self) -> list[BackendRow]:
        instances = list(self.cluster.instances)
        health = self.health(instances)
        with self._lock:
            requests, errors = dict(self._requests), dict(self._errors)
        total = max(sum(requests.values()), 1)
        rows = []
        for instance in instances:
            try:
                state = control.state(instance, timeout=0.3)
                active: int | None = int(state["active"])
                sessions: int | None = sum(int(count) for count in state.get("sessions", {}).values())
            except (OSError, HarnessError):
                active = sessions = None  # killed, hung or cut off: its control port does not answer either
            rows.append(
                BackendRow(
                    instance=instance.name,
                    address=instance.address,
                    requests=requests.get(instance.name, 0),
                    share=round(requests.get(instance.name, 0) / total, 4),
                    expected_share=self.expected.get(instance.name),
                    errors=errors.get(instance.name, 0),
                    active=active,
                    sessions=sessions,
                    health=health.get(instance.name, "-"),
                    fault=self._faults[instance.name][0] if instance.name in self._faults else "",
                )
            )
        return rows

    def series(self) -> dict[str, Any]:
        """Requests per second per instance over the last minutes, and the fault markers."""
        now = int(time.time())
        with self._lock:
            seconds = sorted(second for second in self._series if second > now - SERIES_SECONDS)
            points = [{"t": second, **self._series[second]} for second in seconds]
        return {"points": points, "markers": [asdict(marker) for marker in self.markers]}
