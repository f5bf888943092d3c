"""Long-lived work an instance serves beside its short requests: a WebSocket that echoes and
ticks, a Server-Sent Events stream, a download and an upload at a given rate. Each counts its
open sessions by kind in the instance's state, which the control endpoint reports, so the
harness can see sessions per instance from the instances' side.

Knobs, in the query: ``hold`` (how long the session stays open; 0 or absent: until the client
leaves), ``every`` (a message or event each time it passes), ``events`` (SSE: how many, then
close), ``bytes`` and ``rate`` (bytes a second) for the stream and the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from harness.backends import INSTANCE_HEADER
from harness.backends.behaviour import KnobError, parse_duration_ms
from harness.backends.state import STATE_KEY, InstanceState

CHUNK = 16 * 1024  # bytes written or read at a time by the rate-limited stream and upload


def _seconds(request: web.Request, knob: str, default: str = "0") -> float:
    return parse_duration_ms(request.query.get(knob, default)) / 1000.0


def _count(request: web.Request, knob: str, default: int) -> int:
    text = request.query.get(knob)
    if text is None:
        return default
    if not text.isdigit():
        raise KnobError(f"{knob} must be a whole number, got {text!r}")
    return int(text)


@contextlib.asynccontextmanager
async def _open(request: web.Request, kind: str) -> AsyncIterator[None]:
    async with open_session(request.app[STATE_KEY], kind):
        yield


@contextlib.asynccontextmanager
async def open_session(state: InstanceState, kind: str) -> AsyncIterator[None]:
    """Counts one open session of ``kind`` on the instance while the block runs."""
    sessions = state.sessions
    sessions[kind] = sessions.get(kind, 0) + 1
    state.sessions_opened[kind] = state.sessions_opened.get(kind, 0) + 1
    try:
        yield
    finally:
        sessions[kind] -= 1


def _message(request: web.Request, number: int) -> str:
    return json.dumps({"instance": request.app[STATE_KEY].name, "n": number})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Echoes every text message; with ``every``, sends ``{"instance", "n"}`` that often; closes after ``hold``."""
    hold, every = _seconds(request, "hold"), _seconds(request, "every")
    socket = web.WebSocketResponse()
    socket.headers[INSTANCE_HEADER] = request.app[STATE_KEY].name  # sent with the upgrade's answer
    await socket.prepare(request)
    async with _open(request, "websocket"):
        ticker = asyncio.create_task(_tick(socket, request, every)) if every > 0 else None
        try:
            async with asyncio.timeout(hold) if hold > 0 else contextlib.nullcontext():
                async for message in socket:
                    if message.type == WSMsgType.TEXT:
                        await socket.send_str(message.data)
        except TimeoutError:
            pass
        finally:
            if ticker is not None:
                ticker.cancel()
            await socket.close()
    return socket


async def _tick(socket: web.WebSocketResponse, request: web.Request, every: float) -> None:
    number = 0
    while not socket.closed:
        await asyncio.sleep(every)
        number += 1
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(_message(request, number))


async def sse(request: web.Request) -> web.StreamResponse:
    """``events`` Server-Sent Events (0: until the client leaves), one each ``every`` (default 1 s)."""
    events, every = _count(request, "events", 0), _seconds(request, "every", "1s")
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    response = web.StreamResponse(headers={**headers, INSTANCE_HEADER: request.app[STATE_KEY].name})
    await response.prepare(request)
    async with _open(request, "sse"):
        number = 0
        with contextlib.suppress(ConnectionError):
            while events == 0 or number < events:
                number += 1
                await response.write(f"id: {number}\ndata: {_message(request, number)}\n\n".encode())
                if events == 0 or number < events:
                    await asyncio.sleep(every)
    return response


async def stream(request: web.Request) -> web.StreamResponse:
    """A download of ``bytes`` bytes (default 1 MiB) at ``rate`` bytes a second (0: as fast as it goes)."""
    size, rate = _count(request, "bytes", 1 << 20), _count(request, "rate", 0)
    response = web.StreamResponse(headers={INSTANCE_HEADER: request.app[STATE_KEY].name})
    response.content_length = size
    await response.prepare(request)
    async with _open(request, "stream"):
        started, sent = time.monotonic(), 0
        with contextlib.suppress(ConnectionError):
            while sent < size:
                chunk = min(CHUNK, size - sent)
                # Paced before the write: the last byte leaves at size / rate and the session ends
                # with it, as the client sees it (a small download would otherwise arrive at once).
                await _pace(started, sent + chunk, rate)
                await response.write(b"x" * chunk)
                sent += chunk
    return response


async def upload(request: web.Request) -> web.Response:
    """Reads the request body at ``rate`` bytes a second (0: as fast as it comes); answers its size.

    The upload counts as a session from when the request arrived (see the app's middleware): a
    slow instance's delay is time its connection stays open, as it is for a slow real server."""
    rate = _count(request, "rate", 0)
    started, received = time.monotonic(), 0
    while chunk := await request.content.read(CHUNK):
        received += len(chunk)
        await _pace(started, received, rate)
    state = request.app[STATE_KEY]
    return web.json_response({"instance": state.name, "bytes": received}, headers={INSTANCE_HEADER: state.name})


async def _pace(started: float, done: int, rate: int) -> None:
    """Sleeps until ``done`` bytes are due at ``rate`` bytes a second from ``started``."""
    if rate > 0:
        await asyncio.sleep(max(0.0, started + done / rate - time.monotonic()))
