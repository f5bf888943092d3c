"""What one instance knows of itself: its name, mode, counters, listening sockets and the
connections and sessions it serves; the service app and the control app share it."""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.backends.behaviour import InstanceMode

SESSION_KINDS = ("websocket", "sse", "stream", "upload", "grpc")


# Beyond this many connections an instance stops telling them apart (memory stays bounded).
MAX_PEERS_COUNTED = 200_000


@dataclass
class InstanceState:
    name: str
    mode: InstanceMode = field(default_factory=InstanceMode)
    started: float = field(default_factory=time.monotonic)
    served: int = 0
    count: int = 0
    active: int = 0
    rng: random.Random = field(default_factory=random.Random)
    listener: socket.socket | None = None  # the service's listening socket
    unix_listener: socket.socket | None = None  # the same service on a UNIX socket, when asked for one
    backlog: int = 0
    # Connections that brought requests, told apart by the peer's address and port (a connection's
    # handler object takes no weak reference): a balancer's upstream keepalive shows as few of them.
    peers: set[tuple[Any, ...]] = field(default_factory=set)
    sessions: dict[str, int] = field(default_factory=dict)  # open long-lived sessions by kind (sessions.py)
    # Sessions ever opened by kind: two readings with the same opened and open counts saw no
    # session start or end between them (the harness's consistent snapshots rest on that).
    sessions_opened: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, object]:
        return {
            "instance": self.name,
            "served": self.served,
            "count": self.count,
            "active": self.active,
            "uptime": round(time.monotonic() - self.started, 3),
            "mode": self.mode.as_dict(),
            "backlog": self.backlog,
            "connections": len(self.peers),
            "sessions": {kind: self.sessions.get(kind, 0) for kind in SESSION_KINDS},
            "sessions_opened": {kind: self.sessions_opened.get(kind, 0) for kind in SESSION_KINDS},
        }


# A typed key where aiohttp has them (3.9+); Debian bookworm's aiohttp 3.8, which the
# offline container image carries, takes a plain string.
STATE_KEY: Any = web.AppKey("state", InstanceState) if hasattr(web, "AppKey") else "state"
