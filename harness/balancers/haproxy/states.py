"""HAProxy's own view of its servers over time, sampled from the stats socket during a run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gevent
import gevent.event

from harness.balancers.haproxy.balancer import HaproxyBalancer


@dataclass(frozen=True)
class StateChange:
    time: float  # seconds since the epoch
    server: str  # the instance name
    state: str  # UP, DOWN, ...


@dataclass
class StateRecorder:
    """Polls ``show servers state`` every ``interval`` seconds and keeps every change.

    The interval bounds the error of a measured transition time; 50 ms is a tenth of the
    shipped check interval.
    """

    balancer: HaproxyBalancer
    interval: float = 0.05
    changes: list[StateChange] = field(default_factory=list)
    _stopping: gevent.event.Event = field(default_factory=gevent.event.Event)

    def run(self) -> None:
        last: dict[str, str] = {}
        while not self._stopping.is_set():
            try:
                states = self.balancer.server_states()
            except OSError:
                states = {}  # during a reload the socket is briefly away; the next poll sees it
            # Stamped once the answer is in: a server that went DOWN while the query was on its
            # way is never dated before it went, so no request of its last UP moments counts as
            # sent while it was out.
            moment = time.time()
            for server, state in states.items():
                if last.get(server) != state:
                    self.changes.append(StateChange(moment, server, state))
                    last[server] = state
            self._stopping.wait(self.interval)

    def stop(self) -> None:
        self._stopping.set()

    def first(self, server: str, state: str, after: float, before: float = float("inf")) -> float | None:
        """When ``server`` was first seen in ``state`` between ``after`` and ``before``."""
        return next(
            (c.time for c in self.changes if c.server == server and c.state == state and after < c.time < before),
            None,
        )


def spawn_recorder(balancer: HaproxyBalancer) -> tuple[StateRecorder, gevent.Greenlet]:
    recorder = StateRecorder(balancer)
    return recorder, gevent.spawn(recorder.run)
