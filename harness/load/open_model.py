"""Open-model load: requests arrive at a fixed rate, whatever the answers.

Locust's users form a closed model: a user sends its next request when the last one has
answered, so a slow balancer is also sent fewer requests and the requests it delayed are
never measured (coordinated omission). Here request ``i`` is due at ``start + i / rate``;
its latency runs from when it was due, not from when it could be sent, and a request that
finds every one of ``max_in_flight`` slots busy at its due time counts as late (it is
still sent, as soon as a slot frees up).

Requests come from ``clients`` source addresses in turn, so hashing balancers still see
distinct clients. The records have the same columns as Locust's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.pool
import pandas as pd

from harness.backends import INSTANCE_HEADER
from harness.load.records import COLUMNS
from harness.load.route import Answer, FixedRoute, Route
from harness.load.users import SourceBoundClientPool, pooled_request
from harness.net import client_address


@dataclass(frozen=True)
class OpenModelSettings:
    rate: float  # requests per second
    duration: float
    clients: int = 10
    max_in_flight: int = 1000
    path: str = "/api/count"
    method: str = "GET"
    timeout: float = 60.0


class OpenModelLoad:
    def __init__(self, route: Route, settings: OpenModelSettings) -> None:
        self.route = route
        self.settings = settings
        self.rows: list[dict[str, Any]] = []
        self.late = 0  # requests that found no free slot when they were due
        self.request_count = 0
        # Through a balancer's route, its location, Host and CA; a client-side route takes the path as it is.
        fixed = route if isinstance(route, FixedRoute) else None
        self._path = fixed.path_for(settings.path) if fixed else settings.path
        self._headers = fixed.headers if fixed else {}
        tls = {"ssl_options": {"ca_certs": str(fixed.ca_file)}} if fixed and fixed.ca_file else {}
        self._pools = [
            SourceBoundClientPool(
                client_address(index),
                connection_timeout=getattr(route, "connect_timeout", settings.timeout),
                network_timeout=getattr(route, "read_timeout", settings.timeout),
                concurrency=settings.max_in_flight,
                **tls,
            )
            for index in range(settings.clients)
        ]

    def _send(self, index: int, due: float) -> None:
        client = index % self.settings.clients
        pool = self._pools[client]
        answer: Answer | None = None
        error = ""
        try:
            answer = self.route.send(
                self.settings.method,
                self._path,
                client_address(client),
                lambda url: pooled_request(pool, url, self.settings.method, self._path, self._headers),
            )
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.rows.append(
            {
                "time": due,
                "client": client_address(client),
                "connection": "",
                "instance": answer.header(INSTANCE_HEADER) if answer is not None else "",
                "status": answer.status if answer is not None else 0,
                "latency_ms": (time.time() - due) * 1000,  # from when it was due: waiting for a slot counts
                "name": self.settings.path,
                "error": error,
            }
        )

    def run(self) -> pd.DataFrame:
        settings = self.settings
        slots = gevent.pool.Pool(settings.max_in_flight)
        start = time.time() + 0.05
        total = int(settings.rate * settings.duration)
        try:
            for index in range(total):
                due = start + index / settings.rate
                wait = due - time.time()
                if wait > 0:
                    gevent.sleep(wait)
                if slots.full():
                    self.late += 1
                slots.spawn(self._send, index, due)
            slots.join(timeout=settings.timeout + 5)
        finally:
            slots.kill()
            for pool in self._pools:
                pool.close()
        self.request_count = len(self.rows)
        return pd.DataFrame(self.rows, columns=COLUMNS)
