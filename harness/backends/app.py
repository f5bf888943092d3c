"""One backend instance: the seed's API endpoints plus a control endpoint on its own port.

The service port is what the balancer routes to. The control port is never put behind
the balancer: the harness uses it to read the instance's state and to change its
behaviour at run time (unhealthy, slow, failing) without going through the balancer.
Every response names the instance in the ``X-Instance`` header and in the JSON body, so
the load driver can attribute each request to the instance that served it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from harness.backends import INSTANCE_HEADER, PATH_HEADER, sessions
from harness.backends.behaviour import InstanceMode, KnobError, parse_duration_ms, pick_delay_ms, pick_status
from harness.backends.state import MAX_PEERS_COUNTED, STATE_KEY, InstanceState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(state: InstanceState, body: dict[str, object], status: int = 200) -> web.Response:
    body = {"instance": state.name, **body}
    return web.json_response(body, status=status, headers={INSTANCE_HEADER: state.name})


def _connection_key(transport: asyncio.BaseTransport) -> tuple[object, ...]:
    """What tells one client connection from another: its address and port, or for a UNIX
    socket (whose clients have no address) the inode of the accepted socket, which the kernel
    does not give to another socket while this one is open and numbers onward after."""
    peer = transport.get_extra_info("peername")
    if peer:
        return tuple(peer)
    sock = transport.get_extra_info("socket")
    return ("unix", os.fstat(sock.fileno()).st_ino) if sock is not None else ("unix",)


@web.middleware
async def _behaviour(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count in-flight requests and apply the instance's mode and the request's knobs."""
    state = request.app[STATE_KEY]
    if request.method == "POST" and request.path.endswith("/api/upload"):
        async with sessions.open_session(state, "upload"):
            return await _behave(request, handler, state)
    return await _behave(request, handler, state)


async def _behave(request: web.Request, handler: Handler, state: InstanceState) -> web.StreamResponse:
    state.active += 1
    if request.transport is not None and len(state.peers) < MAX_PEERS_COUNTED:
        state.peers.add(_connection_key(request.transport))
    try:
        delay_ms, status = state.mode.delay_ms, 200
        if state.mode.delay:
            delay_ms += pick_delay_ms(state.mode.delay, state.rng)
        if request.query_string:  # most requests carry no knob: skip parsing the query for them
            try:
                delay_ms += pick_delay_ms(request.query.get("delay"), state.rng)
                status = pick_status(request.query.get("status"), state.rng)
            except KnobError as exc:
                return _json(state, {"error": str(exc)}, status=400)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        state.served += 1
        mode = state.mode
        if mode.fail_rate > 0 and not request.path.endswith("/health") and state.rng.random() < mode.fail_rate:
            return _json(state, {"error": "failing on purpose"}, status=mode.fail_status)
        if status != 200:
            return _json(state, {"status": status}, status=status)
        try:
            response = await handler(request)
            # The path as it arrived: a balancer that rewrites URIs (proxy_pass http://app/) shows here.
            # A session's response was sent as it went (prepared): its headers are gone already.
            if not response.prepared:
                response.headers[PATH_HEADER] = request.path
            return response
        except KnobError as exc:  # a handler's own parameter (ms=) that cannot be understood
            return _json(state, {"error": str(exc)}, status=400)
    finally:
        state.active -= 1


async def health(request: web.Request) -> web.Response:
    """The seed's enhanced health answer: 200 when healthy, 503 when not."""
    state = request.app[STATE_KEY]
    healthy = state.mode.healthy
    verdict = "ok" if healthy else "failing"
    body: dict[str, object] = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "checks": {"database": verdict, "redis": verdict, "memory": "ok", "disk": "ok"},
        "uptime": round(time.monotonic() - state.started, 3),
    }
    return _json(state, body, status=200 if healthy else 503)


async def count(request: web.Request) -> web.Response:
    """A per-instance counter: the seed's ``curl /api/count`` shows it rise per instance."""
    state = request.app[STATE_KEY]
    state.count += 1
    return _json(state, {"count": state.count})


async def cpu_bound(request: web.Request) -> web.Response:
    """Burns CPU for ``ms`` milliseconds (default 200), blocking this instance meanwhile."""
    state = request.app[STATE_KEY]
    duration_ms = parse_duration_ms(request.query.get("ms", "200"))
    deadline = time.perf_counter() + duration_ms / 1000.0
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return _json(state, {"ms": duration_ms, "spins": spins})


async def slow(request: web.Request) -> web.Response:
    """Holds the request open for ``ms`` milliseconds (default 1000) without using CPU."""
    state = request.app[STATE_KEY]
    duration_ms = parse_duration_ms(request.query.get("ms", "1000"))
    await asyncio.sleep(duration_ms / 1000.0)
    return _json(state, {"ms": duration_ms})


def make_service_app(state: InstanceState) -> web.Application:
    app = web.Application(middlewares=[_behaviour])
    app[STATE_KEY] = state
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/count", count)
    app.router.add_get("/api/cpu-bound", cpu_bound)
    app.router.add_get("/api/slow", slow)
    # POST on the same endpoints: nginx does not retry a non-idempotent request it has sent.
    app.router.add_post("/api/count", count)
    app.router.add_post("/api/slow", slow)
    app.router.add_get("/api/ws", sessions.websocket)
    app.router.add_get("/api/sse", sessions.sse)
    app.router.add_get("/api/stream", sessions.stream)
    app.router.add_post("/api/upload", sessions.upload)
    # Any other path (a location's prefix, a URI the balancer rewrote) reaches the endpoint its last
    # segment names, and the counter otherwise: a user's routes all reach an instance.
    app.router.add_route("*", "/{tail:.*}", by_last_segment)
    return app


_BY_LAST_SEGMENT: dict[str, Handler] = {"health": health, "count": count, "cpu-bound": cpu_bound, "slow": slow}


async def by_last_segment(request: web.Request) -> web.StreamResponse:
    handler = _BY_LAST_SEGMENT.get(request.path.rstrip("/").rsplit("/", 1)[-1], count)
    return await handler(request)


async def control_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


async def control_mode(request: web.Request) -> web.Response:
    """Changes the run-time mode; the body holds any of the InstanceMode fields."""
    state = request.app[STATE_KEY]
    try:
        changes = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(changes, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    unknown = set(changes) - set(state.mode.as_dict())
    if unknown:
        return web.json_response({"error": f"unknown mode fields: {sorted(unknown)}"}, status=400)
    for key, value in changes.items():
        setattr(state.mode, key, type(getattr(state.mode, key))(value))
    try:
        pick_delay_ms(state.mode.delay, state.rng)
    except KnobError as exc:
        state.mode.delay = ""
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(state.snapshot())


async def control_backlog(request: web.Request) -> web.Response:
    """Sets the listen backlog of the service socket: ``{"backlog": N}`` (Linux applies it at once)."""
    state = request.app[STATE_KEY]
    try:
        backlog = int((await request.json())["backlog"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return web.json_response({"error": 'body must be {"backlog": N}'}, status=400)
    if state.listener is None or backlog < 0:
        return web.json_response({"error": "no listening socket, or a negative backlog"}, status=400)
    state.listener.listen(backlog)
    if state.unix_listener is not None:
        state.unix_listener.listen(backlog)
    state.backlog = backlog
    return web.json_response(state.snapshot())


async def control_name(request: web.Request) -> web.Response:
    """Renames the instance: ``{"name": N}``. A pod of a Deployment starts under the name
    Kubernetes gave it; the harness renames it to the instance it stands for."""
    state = request.app[STATE_KEY]
    try:
        name = (await request.json())["name"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return web.json_response({"error": 'body must be {"name": N}'}, status=400)
    if not isinstance(name, str) or not name.isprintable() or not 0 < len(name) <= 253:
        return web.json_response({"error": "name must be 1-253 printable characters"}, status=400)
    state.name = name
    return web.json_response(state.snapshot())


async def control_reset(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.mode = InstanceMode()
    return web.json_response(state.snapshot())


def make_control_app(state: InstanceState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_get("/control/state", control_state)
    app.router.add_post("/control/mode", control_mode)
    app.router.add_post("/control/reset", control_reset)
    app.router.add_post("/control/backlog", control_backlog)
    app.router.add_post("/control/name", control_name)
    return app
