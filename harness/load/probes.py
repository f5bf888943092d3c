"""Plain sequential requests, one new connection each, as the seed's ``curl`` loops send them.

Concurrency hides order; these probes are what the exact-order and least_conn checks
read. They use http.client so that each request is exactly one connection and one
request, like curl.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.backends import INSTANCE_HEADER, control
from harness.load.route import Answer, FixedRoute, Route
from harness.net import client_address
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance


@dataclass(frozen=True)
class ProbeResponse:
    instance: str
    status: int
    started: float
    finished: float


def _get_once(base_url: str, path: str, source: str | None, timeout: float) -> Answer:
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1",
        parts.port,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, dict(response.getheaders()), body)
    finally:
        connection.close()


def get(target: str | Route, path: str, source: str | None = None, timeout: float = 10.0) -> ProbeResponse:
    """One GET on a new connection, optionally from source address ``source``; ``target`` is a
    balancer's URL, or a route on which the client picks the instance itself."""
    route = FixedRoute(target) if isinstance(target, str) else target
    timeout = min(timeout, getattr(route, "read_timeout", timeout))
    started = time.time()
    answer = route.send("GET", path, source or "", lambda base_url: _get_once(base_url, path, source, timeout))
    return ProbeResponse(
        instance=answer.header(INSTANCE_HEADER), status=answer.status, started=started, finished=time.time()
    )


def sequential(
    target: str | Route, count: int, path: str = "/api/count", source: str | None = None
) -> list[ProbeResponse]:
    """``count`` requests one after another from one client, in order."""
    return [get(target, path, source) for _ in range(count)]


def serve_through(target: str | Route, instances: Sequence[Instance], max_requests: int = 2000) -> int:
    """Sends health requests until every instance has answered through the balancer.

    Requests come from changing client addresses so that hashing balancers reach every
    instance too. Returns the number of requests it took; raises StartupError when
    ``max_requests`` were not enough.
    """
    waiting = {instance.name for instance in instances}
    sent = 0

    def probe() -> int | None:
        nonlocal sent
        while sent < max_requests and waiting:
            response = get(target, "/api/health", source=client_address(sent), timeout=2.0)
            sent += 1
            waiting.discard(response.instance)
        return sent if not waiting else None

    where = target if isinstance(target, str) else target.description
    WaitStrategy(f"every instance answering through {where}", timeout=15.0, interval=0.05).wait(probe)
    return sent


@dataclass
class LeastConnProbe:
    """Holds one long request on the balancer, then sends short requests one by one.

    The seed's test: ``curl /api/slow &`` then five ``curl /api/count``; with least_conn
    the short requests go to the other instances.
    """

    busy_instance: str
    long_response: ProbeResponse | None
    short_responses: list[ProbeResponse] = field(default_factory=list)

    @property
    def shorts_while_busy(self) -> list[ProbeResponse]:
        """Short requests that started and finished while the long one was in flight."""
        if self.long_response is None:
            return []
        start, end = self.long_response.started, self.long_response.finished
        return [r for r in self.short_responses if r.started >= start and r.finished <= end]


def least_conn_probe(
    target: str | Route, instances: Sequence[Instance], shorts: int = 30, hold_ms: int = 3000
) -> LeastConnProbe:
    """Runs the seed's least_conn test and says which instance held the long request."""
    holder: list[ProbeResponse] = []
    thread = threading.Thread(
        target=lambda: holder.append(get(target, f"/api/slow?ms={hold_ms}", timeout=hold_ms / 1000 + 10)),
        daemon=True,
    )
    thread.start()
    busy = WaitStrategy("the long request to reach an instance", timeout=5.0).wait(
        lambda: _instance_with_active_request(instances)
    )
    result = LeastConnProbe(busy_instance=busy, long_response=None)
    result.short_responses = sequential(target, shorts)
    thread.join(timeout=hold_ms / 1000 + 15)
    result.long_response = holder[0] if holder else None
    return result


def _instance_with_active_request(instances: Sequence[Instance]) -> str | None:
    for instance in instances:
        if int(control.state(instance)["active"]) > 0:
            return instance.name
    return None
