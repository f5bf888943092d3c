"""Open sessions per instance over a run, read from the instances themselves.

Reading N instances takes N requests, and a session may start or end between two of them, so
one round of readings is not a picture of one instant. Each instance reports, besides its
open sessions, how many it has ever opened; when two rounds in a row read the same two
numbers on every instance, nothing started or ended on any of them between the rounds, and
the counts are exact at the instant between them. Those rounds are the *consistent*
snapshots the session checks judge; the others are kept for the plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import numpy as np
import pandas as pd

from harness.backends import control
from harness.backends.instance import Instance

SAMPLE_EVERY_S = 0.05
COLUMNS = ["time", "instance", "open", "consistent"]


@dataclass(frozen=True)
class Reading:
    """One instance's sessions of one kind, as one request read them; ``None``: it did not answer."""

    instance: str
    open: int | None
    opened: int | None


class SessionSampler:
    """Reads ``kind`` sessions on every instance under test every ``every`` seconds until stopped."""

    def __init__(self, instances: Callable[[], list[Instance]], kind: str, every: float = SAMPLE_EVERY_S) -> None:
        self.instances = instances
        self.kind = kind
        self.every = every
        self.rounds: list[tuple[float, list[Reading]]] = []
        self._worker: gevent.Greenlet | None = None

    def start(self) -> SessionSampler:
        self._worker = gevent.spawn(self._run)
        return self

    def stop(self) -> pd.DataFrame:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        return self.frame()

    def _run(self) -> None:
        while True:
            started = time.time()
            self.rounds.append((started, [self._read(instance) for instance in self.instances()]))
            gevent.sleep(max(0.0, started + self.every - time.time()))

    def _read(self, instance: Instance) -> Reading:
        try:
            state = control.state(instance, timeout=1.0)
        except (OSError, ValueError, KeyError):
            return Reading(instance.name, None, None)
        return Reading(instance.name, int(state["sessions"][self.kind]), int(state["sessions_opened"][self.kind]))

    def frame(self) -> pd.DataFrame:
        """One row per instance per round: the time the round began, its open sessions (0 where it
        did not answer), and whether the round is a consistent snapshot (then ``time`` is the
        start of the next round, the instant at which every count held)."""
        rows = []
        for index, (started, readings) in enumerate(self.rounds):
            following = self.rounds[index + 1] if index + 1 < len(self.rounds) else None
            consistent = following is not None and _same(readings, following[1])
            at = following[0] if following is not None and consistent else started
            rows += [(at, reading.instance, reading.open or 0, consistent) for reading in readings]
        return pd.DataFrame(rows, columns=COLUMNS)


def _same(first: list[Reading], second: list[Reading]) -> bool:
    return all(r.open is not None for r in first) and first == second


def clients_view(samples: pd.DataFrame, sessions: pd.DataFrame) -> pd.Series:
    """The sessions the clients held open on each sample's instance at its time, from their
    records (a session's start ``time`` and its length, ``latency_ms``): the clients' view,
    beside the instance's own count. A session counts from its start to its end, both as the
    client saw them, so the two views differ by the time a session's opening and closing take
    to cross the balancer."""
    counted = np.zeros(len(samples), dtype=np.int64)
    times = samples["time"].to_numpy(dtype=float)
    starts = sessions["time"].to_numpy(dtype=float)
    ends = starts + sessions["latency_ms"].to_numpy(dtype=float) / 1000
    names = sessions["instance"].to_numpy(dtype=object)
    for instance, rows in samples.groupby("instance").indices.items():
        mine = names == instance
        at = times[rows]
        opened = np.searchsorted(np.sort(starts[mine]), at, side="right")
        counted[rows] = opened - np.searchsorted(np.sort(ends[mine]), at, side="right")
    return pd.Series(counted, index=samples.index, name="clients_open")
