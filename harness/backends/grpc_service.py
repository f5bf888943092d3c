"""The instance's gRPC service, on grpcio beside its HTTP one: ``harness.Echo``.

``Unary`` answers each call with the instance's name; ``Stream`` sends ``messages`` answers,
one each ``every`` seconds (the request, JSON: ``{"messages": N, "every": S}``). Both name the
instance in the trailing metadata (``x-instance``), which is where a gRPC client reads who
served its call whatever the balancer did to the headers. Messages are raw bytes: no
generated code, and any gRPC client can call it with the method's full name.

An open ``Stream`` counts as a ``grpc`` session in the instance's state, as a WebSocket does;
``Unary`` keeps to the instance's mode (delay, failure rate) as its HTTP endpoints do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc

from harness.backends import GRPC_INSTANCE_METADATA, GRPC_SERVICE
from harness.backends.behaviour import pick_delay_ms
from harness.backends.state import MAX_PEERS_COUNTED, InstanceState

MAX_STREAM_MESSAGES = 100_000


def _handler(state: InstanceState) -> grpc.GenericRpcHandler:
    trailer = ((GRPC_INSTANCE_METADATA, state.name),)

    def count_connection(context: Any) -> None:
        # The balancer's connection, as the HTTP endpoints count theirs: upstream keepalive shows as few.
        if len(state.peers) < MAX_PEERS_COUNTED:
            state.peers.add((context.peer(),))

    async def unary(request: bytes, context: Any) -> bytes:
        # The instance's mode applies as it does to HTTP: a slow instance's delay, a failing one's errors.
        state.served += 1
        state.active += 1
        count_connection(context)
        try:
            mode = state.mode
            delay_ms = mode.delay_ms + (pick_delay_ms(mode.delay, state.rng) if mode.delay else 0.0)
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
            context.set_trailing_metadata(trailer)
            if mode.fail_rate > 0 and state.rng.random() < mode.fail_rate:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")
            state.count += 1
            return state.name.encode()
        finally:
            state.active -= 1

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        try:
            asked = json.loads(request or b"{}")
            messages = min(MAX_STREAM_MESSAGES, int(asked.get("messages", 1)))
            every = float(asked.get("every", 0))
        except (ValueError, TypeError, AttributeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a Stream request: {exc}")
            return
        state.served += 1
        count_connection(context)
        state.sessions["grpc"] = state.sessions.get("grpc", 0) + 1
        state.sessions_opened["grpc"] = state.sessions_opened.get("grpc", 0) + 1
        context.set_trailing_metadata(trailer)
        try:
            for number in range(messages):
                if number and every > 0:
                    await asyncio.sleep(every)
                yield json.dumps({"instance": state.name, "n": number + 1}).encode()
        finally:
            state.sessions["grpc"] -= 1

    return grpc.method_handlers_generic_handler(
        GRPC_SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )


async def start_grpc(state: InstanceState, host: str, port: int = 0) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on ``host:port`` (0: a free port), and its port; OSError when it cannot bind."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(state),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpcio reports a failed bind as RuntimeError
        raise OSError(f"gRPC cannot bind {host}: {exc}") from exc
    await server.start()
    return server, bound
