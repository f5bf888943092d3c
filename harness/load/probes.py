"""Plain sequential requests, one new connection each, as the seed's ``curl`` loops send them.

Concurrency hides order; these probes are what the exact-order and least_conn checks
read. They use http.client so that each request is exactly one connection and one
request, like curl.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import statistics
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness.backends import INSTANCE_HEADER, control
from harness.errors import StartupError
from harness.load import grpc_client
from harness.load.grpc_client import UNARY, GrpcCallError
from harness.load.keys import KeyPlan
from harness.load.route import Answer, FixedRoute, Route
from harness.net import client_address
from harness.readiness import StillWaiting, WaitStrategy
from harness.runtimes.base import Instance

SERVE_THROUGH_CONCURRENCY = 8  # requests in flight while every instance is awaited through the balancer


@dataclass(frozen=True)
class ProbeResponse:
    instance: str
    status: int
    started: float
    finished: float


def _get_once(
    base_url: str,
    path: str,
    source: str | None,
    timeout: float,
    headers: dict[str, str],
    context: ssl.SSLContext | None,
) -> Answer:
    parts = urllib.parse.urlsplit(base_url)
    address = (source, 0) if source else None
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout, source_address=address, context=context
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout, source_address=address
        )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, dict(response.getheaders()), body)
    finally:
        connection.close()


def tls_context(route: FixedRoute) -> ssl.SSLContext | None:
    """A client context that trusts the route's CA and checks the name the route sends as Host."""
    if not route.tls:
        return None
    context = ssl.create_default_context(cafile=str(route.ca_file) if route.ca_file else None)
    return context


def get(
    target: str | Route,
    path: str,
    source: str | None = None,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> ProbeResponse:
    """One GET on a new connection, optionally from source address ``source``; ``target`` is a
    balancer's URL, or a route on which the client picks the instance itself. ``path`` is the
    harness's own (``/api/count``): a balancer's route puts it under its location."""
    route = FixedRoute(target) if isinstance(target, str) else target
    if isinstance(route, FixedRoute) and (route.grpc or route.http2):
        return _h2_request(route, path, source, timeout)
    timeout = min(timeout, getattr(route, "read_timeout", timeout))
    context = None
    sent = path
    sent_headers = dict(headers or {})
    if isinstance(route, FixedRoute):
        sent_headers, context, sent = {**route.headers, **sent_headers}, _contexts.get(route), route.path_for(path)
    started = time.time()
    answer = route.send(
        "GET", sent, source or "", lambda base_url: _get_once(base_url, sent, source, timeout, sent_headers, context)
    )
    return ProbeResponse(
        instance=answer.header(INSTANCE_HEADER), status=answer.status, started=started, finished=time.time()
    )


def _h2_request(route: FixedRoute, path: str, source: str | None, timeout: float) -> ProbeResponse:
    """An HTTP/2 route's probe on a new connection: one unary call on a gRPC route (the path does
    not apply), one GET of ``path`` on a route of plain HTTP/2."""
    started = time.time()
    with grpc_client.connect(route, source or "", timeout) as connection:
        try:
            answer = connection.get(route.path_for(path)) if route.http2 else connection.call(UNARY)
        except GrpcCallError as exc:
            raise ConnectionError(str(exc)) from exc
    return ProbeResponse(instance=answer.instance, status=answer.status, started=started, finished=time.time())


def one_connection(route: FixedRoute, calls: int, http2: bool, timeout: float = 10.0) -> list[str]:
    """``calls`` requests one after another on one new HTTP/2 connection (GETs with ``http2``,
    on a route that takes plain HTTP/2 only or beside HTTP/1.1; unary calls on a gRPC route):
    the instance of each."""
    path = route.path_for("/api/count")
    with grpc_client.connect(route, "", timeout) as connection:
        return [(connection.get(path) if http2 else connection.call(UNARY)).instance for _ in range(calls)]


def get_answer(route: FixedRoute, path: str, timeout: float = 10.0) -> Answer:
    """One GET on the route, the whole answer (status, headers, body) as it came."""
    sent = route.path_for(path)
    return _get_once(route.url, sent, None, timeout, route.headers, _contexts.get(route))


class _TlsContexts:
    """One client context per route: loading a CA file per probe would cost more than the probe."""

    def __init__(self) -> None:
        self._by_route: dict[FixedRoute, ssl.SSLContext | None] = {}

    def get(self, route: FixedRoute) -> ssl.SSLContext | None:
        if route not in self._by_route:
            self._by_route[route] = tls_context(route)
        return self._by_route[route]


_contexts = _TlsContexts()


def sequential(
    target: str | Route, count: int, path: str = "/api/count", source: str | None = None
) -> list[ProbeResponse]:
    """``count`` requests one after another from one client, in order."""
    return [get(target, path, source) for _ in range(count)]


def serve_through(target: str | Route, instances: Sequence[Instance], max_requests: int = 2000) -> int:
    """Sends health requests until every instance has answered through the balancer.

    Requests come from changing client addresses so that hashing balancers reach every
    instance too, a few at a time (a thousand instances take a thousand requests). Returns the
    number of requests it took; raises StartupError when ``max_requests`` were not enough.
    """
    waiting = {instance.name for instance in instances}
    sent = 0

    def health(index: int) -> ProbeResponse:
        return get(target, "/api/health", source=client_address(index), timeout=2.0)

    def probe() -> int | None:
        nonlocal sent
        with ThreadPoolExecutor(SERVE_THROUGH_CONCURRENCY) as pool:
            while sent < max_requests and waiting:
                batch = range(sent, min(sent + 4 * SERVE_THROUGH_CONCURRENCY, max_requests))
                waiting.difference_update(response.instance for response in pool.map(health, batch))
                sent = batch.stop
        return sent if not waiting else None

    where = target if isinstance(target, str) else target.description
    WaitStrategy(f"every instance answering through {where}", timeout=15.0, interval=0.05).wait(probe)
    return sent


def answers_through(
    target: str | Route, instances: Sequence[Instance], timeout: float = 15.0, others: Sequence[Instance] = ()
) -> ProbeResponse:
    """Waits until the balancer answers on its route from one of ``instances``; returns that answer.

    The instances are ready before the balancer starts, so nginx never meets the start-up trap
    (every peer failing at once); one answer proves the route reaches them. Backup and down
    servers, hash keys and routes that reach some instances only all pass. The timeout names
    the route and the last answer.
    """
    names = {instance.name for instance in instances}
    elsewhere = {instance.name: instance.service for instance in others}
    where = target if isinstance(target, str) else target.description
    strategy = WaitStrategy(f"an instance answering GET /api/health through {where}", timeout=timeout, interval=0.05)

    def probe() -> ProbeResponse | None:
        response = get(target, "/api/health", timeout=2.0)
        if response.instance in names:
            return response
        seen = f"HTTP {response.status} from {response.instance or 'the balancer itself'}"
        if response.instance in elsewhere:
            # ``others`` are the config's other groups: the route leads there, and waiting will not change it.
            raise StartupError(
                f"GET /api/health through {where} reached {response.instance} of {elsewhere[response.instance]}, "
                "outside the group under test; name the route to load with --route HOST/PATH"
            )
        if not response.instance and response.status < 500:
            # The balancer's own 3xx or 4xx (a redirect, deny, return 404) will not change by waiting.
            raise StartupError(
                f"GET /api/health through {where} got {seen}: the route does not reach the upstream under "
                "test; name the one to load with --route HOST/PATH"
            )
        raise StillWaiting(seen)

    return strategy.wait(probe)


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


def key_probe(target: str | Route, plan: KeyPlan, keys: int = 32, clients: int = 3) -> dict[str, list[str]]:
    """For each of ``keys`` key values, the instances its requests reached, each key sent from
    ``clients`` client addresses (one, when the key is the client's address)."""
    senders = 1 if plan.follows_client else clients
    picks: dict[str, list[str]] = {}
    for index in range(keys):
        for client in range(senders):
            request = plan.request(index, client)
            response = get(target, request.path, source=request.source, headers=request.headers)
            picks.setdefault(request.key, []).append(response.instance)
    return picks


@dataclass(frozen=True)
class InFlightProbe:
    peaks: dict[str, int]  # the most requests each instance held at once
    statuses: list[int]  # what each long request got
    sent: int


def in_flight_probe(
    target: str | Route, instances: Sequence[Instance], count: int, hold_ms: int = 1500
) -> InFlightProbe:
    """Opens ``count`` long requests together and samples each instance's requests in flight
    until they have all finished (the instances count them themselves)."""
    statuses: list[int] = []
    lock = threading.Lock()

    def hold() -> None:
        try:
            status = get(target, f"/api/slow?ms={hold_ms}", timeout=hold_ms / 1000 + 10).status
        except OSError:
            status = 0
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    peaks = {instance.name: 0 for instance in instances}
    deadline = time.monotonic() + hold_ms / 1000 + 15
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline:
        for instance in instances:
            peaks[instance.name] = max(peaks[instance.name], int(control.state(instance)["active"]))
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=1)
    return InFlightProbe(peaks=peaks, statuses=statuses, sent=count)


@dataclass(frozen=True)
class HandshakeCost:
    connect_ms: float  # median TCP connect
    handshake_ms: float  # median TLS handshake after it
    count: int

    def __str__(self) -> str:
        return (
            f"TLS handshake {self.handshake_ms:.2f} ms median of {self.count} "
            f"(TCP connect {self.connect_ms:.2f} ms; each new client connection pays both)"
        )


def handshake_cost(route: FixedRoute, count: int = 20) -> HandshakeCost:
    """Times ``count`` TCP connects and TLS handshakes to the route's balancer, one at a time."""
    parts = urllib.parse.urlsplit(route.url)
    context = _contexts.get(route) or ssl.create_default_context()
    connects, handshakes = [], []
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 443), timeout=5) as raw:
            connected = time.perf_counter()
            with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                tls.do_handshake()
                done = time.perf_counter()
        connects.append((connected - started) * 1000)
        handshakes.append((done - connected) * 1000)
    return HandshakeCost(statistics.median(connects), statistics.median(handshakes), count)
