"""Locust users that hold long-lived sessions through a balancer: WebSocket, SSE, paced downloads.

Locust has no WebSocket user of its own. These users open their sessions on well-kept
clients (websocket-client for WebSocket, the standard library's http.client for SSE and
streams) over sockets bound to the user's own loopback address, as the request users do, and
report each session as one event on Locust's ``request`` event when it ends: its length as
the response time and the instance from the ``X-Instance`` header of the answer that opened
it. Stats, records and attribution then work as they do for requests.

A session ends when the instance ends it (``hold``). The user then reads its connection to
the end before opening the next: the balancer closes the client's side only after it has
let go of the instance's, so by then the balancer no longer counts the old session, and a
least_conn pick of the next one sees the connections as they are.
"""

from __future__ import annotations

import http.client
import itertools
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import websocket
from gevent import GreenletExit
from locust import User, constant, task

from harness.load.route import Answer, FixedRoute
from harness.load.workload import STREAM_RATE, SessionLengths, Workload
from harness.net import ClientPopulation, client_address

SESSION_NAMES = ("/api/ws", "/api/sse", "/api/stream", "/api/upload")  # the records' names of sessions, not requests
GRACE_S = 10.0  # a read may wait this long past a session's length before the session counts as stalled
ENDED_EARLY = 0.8  # a session shorter than this share of its length was cut, not ended


class SessionCut(Exception):
    """A session that ended long before the length it asked for: the connection was lost."""


class _Numbering:
    """Hands out user numbers, thread- and greenlet-safe."""

    def __init__(self) -> None:
        self._numbers: Iterator[int] = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._numbers)


def connect(route: FixedRoute, source: str, timeout: float) -> socket.socket:
    """A connection to the balancer from ``source``, through TLS when the route is https."""
    parts = urllib.parse.urlsplit(route.url)
    host, port = parts.hostname or "", parts.port or (443 if route.tls else 80)
    sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    if not route.tls:
        return sock
    context = ssl.create_default_context(cafile=str(route.ca_file) if route.ca_file else None)
    return context.wrap_socket(sock, server_hostname=route.host or host)


Opened = Callable[[Answer], None]  # hears the answer that opened a session, before the session runs


def websocket_session(route: FixedRoute, source: str, hold: float, every: float, opened: Opened) -> int:
    """One WebSocket session of ``hold`` seconds: the upgrade's answer to ``opened``, the messages received."""
    sock = connect(route, source, hold + GRACE_S)
    scheme = "wss" if route.tls else "ws"
    netloc = urllib.parse.urlsplit(route.url).netloc
    path = route.path_for(f"/api/ws?hold={hold:.3f}s&every={every:g}s")
    options: dict[str, Any] = {"host": route.host} if route.host else {}
    ws = websocket.create_connection(f"{scheme}://{netloc}{path}", socket=sock, timeout=hold + GRACE_S, **options)
    try:
        opened(Answer(ws.getstatus() or 0, dict(ws.getheaders() or {})))
        messages = 0
        while True:
            opcode, _ = ws.recv_data_frame(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            messages += 1
        _read_to_end(sock)
        return messages
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]


def _read_to_end(sock: socket.socket) -> None:
    """Waits for the balancer to close the connection (it does once it has let go of the instance)."""
    while sock.recv(4096):
        pass


def http_session(
    route: FixedRoute, source: str, path: str, hold: float, opened: Opened, body: bytes | None = None
) -> int:
    """A GET read to its end (an SSE stream or a paced download), or a POST of ``body`` (an upload):
    its answer to ``opened``, the bytes read."""
    parts = urllib.parse.urlsplit(route.url)
    connection: http.client.HTTPConnection
    if route.tls:
        context = ssl.create_default_context(cafile=str(route.ca_file) if route.ca_file else None)
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=hold + GRACE_S, source_address=(source, 0), context=context
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname or "", parts.port, timeout=hold + GRACE_S, source_address=(source, 0)
        )
    try:
        method = "GET" if body is None else "POST"
        headers = {**route.headers, "Connection": "close"}
        connection.request(method, route.path_for(path), body=body, headers=headers)
        response = connection.getresponse()
        opened(Answer(response.status, dict(response.getheaders())))
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
        return size
    finally:
        connection.close()


def make_session_user_class(
    route: FixedRoute,
    workload: Workload,
    first_client: int = 0,
    population: ClientPopulation | None = None,
) -> type[User]:
    """A Locust user class that holds ``workload``'s sessions one after another through ``route``."""
    numbering = _Numbering()
    address = population.address if population is not None else client_address

    class SessionUser(User):
        wait_time = constant(0)

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            number = numbering.next()
            self.source_address = address(first_client + number)
            self.lengths: SessionLengths = workload.lengths(number)

        @task
        def turn(self) -> None:
            source = self.source_address
            if not self.lengths.next_is_session():
                self._measured("GET", "/api/count", 0.0, partial(http_session, route, source, "/api/count", GRACE_S))
                return
            hold = self.lengths.next_hold()
            kind = "websocket" if workload.kind == "mixed" else workload.kind
            if kind == "websocket":
                self._measured("WS", "/api/ws", hold, partial(websocket_session, route, source, hold, workload.every))
            elif kind == "sse":
                events = max(1, round(hold / workload.every))
                path = f"/api/sse?events={events + 1}&every={hold / events:.3f}s"
                self._measured("SSE", "/api/sse", hold, partial(http_session, route, source, path, hold))
            elif kind == "upload":
                # Sent whole at once; the instance reads it at STREAM_RATE, so the upload lasts ``hold``.
                body, path = b"x" * int(hold * STREAM_RATE), f"/api/upload?rate={STREAM_RATE}"
                session = partial(http_session, route, source, path, hold, body=body)
                self._measured("POST", "/api/upload", hold, session)
            else:
                path = f"/api/stream?bytes={int(hold * STREAM_RATE)}&rate={STREAM_RATE}"
                self._measured("GET", "/api/stream", hold, partial(http_session, route, source, path, hold))

        def _measured(self, kind: str, name: str, hold: float, session: Callable[[Opened], int]) -> None:
            measured(self.environment, self.source_address, kind, name, hold, session)

    return SessionUser


def measured(
    environment: Any, source: str, kind: str, name: str, hold: float, session: Callable[[Opened], int]
) -> None:
    """Runs one session and fires its event on ``environment``: the answer that opened it (its
    instance), also when the session was cut afterwards or was still open when the load ended."""
    started, clock = time.time(), time.perf_counter()
    answers: list[Answer] = []
    error: Exception | None = None
    size = 0

    def fire(answer: Answer | None, error: Exception | None) -> None:
        environment.events.request.fire(
            request_type=kind, name=name, response_time=(time.perf_counter() - clock) * 1000, response_length=size,
            response=answer, context={"client": source}, exception=error, start_time=started, url=name,
        )  # fmt: skip

    try:
        size = session(answers.append)
    except (OSError, websocket.WebSocketException, http.client.HTTPException) as exc:
        error = exc
    except GreenletExit:
        # The load ended with the session open: served so far, neither cut nor lost.
        if answers:
            fire(answers[0], None)
        raise
    seconds = time.perf_counter() - clock
    answer = answers[0] if answers else None
    if answer is not None and answer.status >= 400:
        error = SessionCut(f"HTTP {answer.status}")
    elif error is None and seconds < ENDED_EARLY * hold:
        error = SessionCut(f"ended after {seconds:.2f} s of {hold:.2f} s")
    fire(answer, error)
