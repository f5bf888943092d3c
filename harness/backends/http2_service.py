"""The instance's plain HTTP over HTTP/2, on hypercorn beside its HTTP/1.1 service.

The port speaks h2c (prior knowledge, as a client that knows its server speaks HTTP/2 opens,
or an ``Upgrade: h2c``) and, when the instance serves TLS, h2 over TLS by ALPN, with HTTP/1.1
for clients that offer nothing else. Every answer names the instance in ``X-Instance``, as the
HTTP/1.1 endpoints do, and keeps to the instance's mode (a slow instance's delay, a failing
one's 503s). A balancer of connections (kube-proxy) passes a client's HTTP/2 connection here
whole, so every request of that connection reaches this instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from harness.backends import INSTANCE_HEADER
from harness.backends.behaviour import pick_delay_ms
from harness.backends.state import MAX_PEERS_COUNTED, InstanceState

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
LISTEN_BACKLOG = 511


def make_app(state: InstanceState) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The ASGI app: any GET or POST answered with the instance's name and the protocol it came over."""
    name = state.name.encode()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        state.served += 1
        state.active += 1
        if len(state.peers) < MAX_PEERS_COUNTED and scope.get("client"):
            state.peers.add(tuple(scope["client"]))
        try:
            status, body = await _answer(state, scope)
        finally:
            state.active -= 1
        headers = [(b"content-type", b"application/json"), (INSTANCE_HEADER.lower().encode(), name)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def _answer(state: InstanceState, scope: dict[str, Any]) -> tuple[int, bytes]:
    mode = state.mode
    delay_ms = mode.delay_ms + (pick_delay_ms(mode.delay, state.rng) if mode.delay else 0.0)
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)
    if mode.fail_rate > 0 and state.rng.random() < mode.fail_rate:
        return 503, json.dumps({"instance": state.name, "error": "failing on purpose"}).encode()
    state.count += 1
    answer = {"instance": state.name, "path": scope["path"], "http_version": scope["http_version"]}
    return 200, json.dumps(answer).encode()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class Http2Server:
    """A started server; ``stop(grace)`` closes it, as a gRPC server's does."""

    def __init__(self, task: asyncio.Task[None], stopping: asyncio.Event) -> None:
        self._task = task
        self._stopping = stopping

    async def stop(self, grace: float = 0.0) -> None:
        """Stops accepting and closes the connections, after at most ``grace`` + 2 s."""
        self._stopping.set()
        # A server that failed has said so in the instance's log; stopping must not fail with it.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=grace + 2.0)


async def start_http2(
    state: InstanceState, host: str, port: int = 0, tls: tuple[str, str] | None = None
) -> tuple[Http2Server, int]:
    """The HTTP/2 server on ``host:port`` (0: a free port), with TLS from ``tls`` (certificate,
    key) when given, and its port; OSError when it cannot bind.

    The socket is bound and listening before it returns, so a client that connects at once
    waits in the backlog instead of being refused.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    bound = int(listener.getsockname()[1])
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns the listening socket from here
    config.backlog = LISTEN_BACKLOG
    config.accesslog = None
    config.keep_alive_timeout = 75  # a balancer's idle connections, as the HTTP/1.1 service keeps them
    if tls is not None:
        config.certfile, config.keyfile = tls
    stopping = asyncio.Event()
    task = asyncio.create_task(serve(make_app(state), config, shutdown_trigger=stopping.wait))  # type: ignore[arg-type]
    # hypercorn makes its sockets (and its TLS context) on its first turn: one failing there is
    # this instance failing to start, before it announces itself ready.
    for _ in range(3):
        await asyncio.sleep(0)
    if task.done() and task.exception() is not None:
        raise OSError(f"HTTP/2 server did not start: {task.exception()}")
    return Http2Server(task, stopping), bound
