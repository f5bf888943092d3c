"""What each Locust user does in a loop: short requests (the default), or long-lived sessions.

The seed's case for least_conn is long-lived work (WebSocket, Server-Sent Events, downloads),
whose open connections, not its request counts, are what a balancer must keep even. A session
workload has every user hold one session at a time: it asks the instance for a session of a
given length (``hold``), waits for the instance to end it, and opens the next one at once.
Session lengths vary as real ones do: drawn from an exponential distribution around the mean
by default, each user from its own seeded generator, so a run's lengths are the same every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.errors import SpecError

WORKLOADS = ("requests", "websocket", "sse", "stream", "upload", "mixed", "grpc", "http2")
# Workloads whose users hold one HTTP/2 connection a turn and send requests on it, one after another.
ONE_CONNECTION_WORKLOADS = frozenset({"grpc", "http2"})
# Workloads whose users hold sessions the instances count (a gRPC or HTTP/2 user's calls are requests).
SESSION_WORKLOADS = frozenset(WORKLOADS) - {"requests"} - ONE_CONNECTION_WORKLOADS
DURATIONS = ("exponential", "fixed")
SHORTEST_SESSION_S = 0.05  # an exponential draw below this is raised to it: a session, not a request
STREAM_RATE = 64 * 1024  # bytes a second of a stream session: its length is bytes / rate
MAX_HOLD_S = 3600.0


@dataclass(frozen=True)
class Workload:
    """``kind``: requests, websocket, sse, stream, upload, mixed (short requests and WebSocket sessions) or
    grpc (unary calls, one after another, over one HTTP/2 connection a user holds ``hold`` seconds) or
    http2 (plain GETs, the same way).

    ``hold``: a session's mean length in seconds; ``durations``: exponential around it, or fixed.
    ``every``: a message (WebSocket) or event (SSE) that often during a session; gRPC: a call that
    often (0: back to back).
    ``session_share``: mixed: the share of a user's turns that open a session.
    """

    kind: str = "requests"
    hold: float = 2.0
    durations: str = "exponential"
    every: float = 0.5
    session_share: float = 0.2
    seed: int = 0

    @property
    def has_sessions(self) -> bool:
        return self.kind in SESSION_WORKLOADS

    @property
    def is_grpc(self) -> bool:
        return self.kind == "grpc"

    @property
    def is_http2(self) -> bool:
        return self.kind == "http2"

    @property
    def over_one_connection(self) -> bool:
        """Each user's requests of a turn go over one HTTP/2 connection (grpc, http2)."""
        return self.kind in ONE_CONNECTION_WORKLOADS

    @property
    def chosen(self) -> bool:
        """Anything but the default short requests."""
        return self.kind != "requests"

    @property
    def session_kind(self) -> str:
        """The instances' name for the sessions this workload opens (``/control/state`` "sessions")."""
        return {"sse": "sse", "stream": "stream", "upload": "upload"}.get(self.kind, "websocket")

    @property
    def session_word(self) -> str:
        """The sessions' name in a sentence."""
        return {"sse": "SSE", "stream": "stream", "upload": "upload"}.get(self.kind, "WebSocket")

    def validate(self) -> Workload:
        if self.kind not in WORKLOADS:
            raise SpecError(f"unknown --workload {self.kind!r}; choose from {', '.join(WORKLOADS)}")
        if self.durations not in DURATIONS:
            raise SpecError(f"unknown --session-durations {self.durations!r}; choose from {', '.join(DURATIONS)}")
        if not SHORTEST_SESSION_S <= self.hold <= MAX_HOLD_S:
            raise SpecError(
                f"--session-hold must be between {SHORTEST_SESSION_S:g} and {MAX_HOLD_S:g} s, got {self.hold:g}"
            )
        least = 0 if self.over_one_connection else None  # calls on one connection may follow one another at once
        if not (self.every >= 0 if least == 0 else self.every > 0) or self.every > MAX_HOLD_S:
            above = "at least 0" if least == 0 else "above 0"
            raise SpecError(f"--session-every must be {above} and at most {MAX_HOLD_S:g} s, got {self.every:g}")
        if not 0 < self.session_share <= 1:
            raise SpecError(f"--session-share must be above 0 and at most 1, got {self.session_share:g}")
        return self

    def lengths(self, user: int) -> SessionLengths:
        """User ``user``'s session lengths, the same in every run with this seed."""
        return SessionLengths(self, random.Random(f"{self.seed}/{user}"))

    def describe(self) -> str:
        if self.over_one_connection:
            pace = f"one every {self.every:g} s" if self.every > 0 else "back to back"
            calls = "gRPC unary calls" if self.is_grpc else "GET requests"
            return f"{calls} ({pace}) over one HTTP/2 connection per user, held {self.hold:g} s"
        if not self.has_sessions:
            return "short requests"
        lengths = (
            f"{self.durations} lengths around {self.hold:g} s" if self.durations != "fixed" else f"{self.hold:g} s"
        )
        what = {
            "websocket": "WebSocket sessions", "sse": "Server-Sent Events streams", "stream": "paced downloads",
            "upload": "uploads the instance reads at a pace",
        }  # fmt: skip
        if self.kind == "mixed":
            return f"short requests and WebSocket sessions ({self.session_share:.0%} of turns, {lengths})"
        return f"{what[self.kind]} of {lengths}"


class SessionLengths:
    """One user's sequence of session lengths and, for a mixed workload, of session-or-request turns."""

    def __init__(self, workload: Workload, rng: random.Random) -> None:
        self.workload = workload
        self.rng = rng

    def next_hold(self) -> float:
        if self.workload.durations == "fixed":
            return self.workload.hold
        return max(SHORTEST_SESSION_S, self.rng.expovariate(1.0 / self.workload.hold))

    def next_is_session(self) -> bool:
        return self.workload.kind != "mixed" or self.rng.random() < self.workload.session_share
