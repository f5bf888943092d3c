"""Process entry point of one backend instance: ``python -m harness.backends.serve``.

The instance binds its service and control sockets, then prints one JSON line to stdout,
``{"ready": true, "name": N, "port": P, "control_port": C, "pid": ...}``, or
``{"ready": false, "name": N, "error": ...}`` when it cannot bind. The runtime reads that
line as its readiness signal, so no caller ever polls a port that is not yet bound;
port 0 lets the kernel choose free ports, which keeps concurrent runs apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import sys
from typing import Any

from aiohttp import web

from harness.backends.app import make_control_app, make_service_app
from harness.backends.state import InstanceState

# nginx's own default; also bounds how many connections the blackhole fault must hold.
SERVICE_BACKLOG = 511


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness-backend", description=__doc__)
    parser.add_argument("--name", required=True, help="instance name, echoed in every response")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--socket", default="", help="also serve on this UNIX socket (a stale file is replaced)")
    parser.add_argument("--tls-cert", default="", help="serve TLS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", default="", help="the private key of --tls-cert (PEM)")
    parser.add_argument("--grpc", action="store_true", help="also serve harness.Echo over gRPC (h2c)")
    parser.add_argument("--grpc-port", type=int, default=0, help="the gRPC port (0: the kernel picks)")
    parser.add_argument("--http2", action="store_true", help="also serve HTTP/2 (h2c, and h2 over TLS with --tls-cert)")
    parser.add_argument("--http2-port", type=int, default=0, help="the HTTP/2 port (0: the kernel picks)")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    state = InstanceState(name=args.name)
    runners: list[web.AppRunner] = []
    servers: list[Any] = []  # the gRPC and HTTP/2 servers, when it serves them
    try:
        await _start(args, state, runners, servers)
    except OSError as exc:
        # Announced instead of a traceback so the runtime can say at once which address failed.
        _announce({"ready": False, "name": args.name, "pid": os.getpid(), "error": str(exc)})
        raise SystemExit(1) from exc
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    for server in servers:
        await server.stop(0)
    for runner in runners:
        await runner.cleanup()


async def _start(
    args: argparse.Namespace, state: InstanceState, runners: list[web.AppRunner], servers: list[Any]
) -> None:
    """Binds and starts the instance's servers and announces it; its gRPC and HTTP/2 servers go in ``servers``."""
    # Idle keep-alive connections from the balancer are normal; no access log keeps the
    # hot path short (the balancer's own log is the record of requests).
    service = web.AppRunner(make_service_app(state), access_log=None, keepalive_timeout=75)
    control = web.AppRunner(make_control_app(state), access_log=None)
    runners += [service, control]
    await service.setup()
    await control.setup()
    # The harness owns the listening socket so that the control endpoint can shrink its
    # backlog (the blackhole fault) and restore it.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(SERVICE_BACKLOG)
    state.listener = listener
    state.backlog = SERVICE_BACKLOG
    tls = _tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    service_site = web.SockSite(service, listener, backlog=SERVICE_BACKLOG, ssl_context=tls)
    control_site = web.TCPSite(control, args.control_host, args.control_port)
    await service_site.start()
    if args.socket:
        state.unix_listener = _unix_listener(args.socket)
        await web.SockSite(service, state.unix_listener, backlog=SERVICE_BACKLOG, ssl_context=tls).start()
    await control_site.start()
    grpc_port = 0
    if args.grpc:
        # Imported here: only instances asked for gRPC pay for grpcio, and the launcher forks
        # before any of its threads exist.
        from harness.backends.grpc_service import start_grpc

        grpc_server, grpc_port = await start_grpc(state, args.host, args.grpc_port)
        servers.append(grpc_server)
    http2_port = 0
    if args.http2:
        from harness.backends.http2_service import start_http2  # hypercorn only for instances asked for it

        tls_files = (args.tls_cert, args.tls_key) if args.tls_cert else None
        http2_server, http2_port = await start_http2(state, args.host, args.http2_port, tls_files)
        servers.append(http2_server)
    _announce(
        {
            "ready": True,
            "name": args.name,
            "pid": os.getpid(),
            "port": _bound_port(service),
            "control_port": _bound_port(control),
            "grpc_port": grpc_port,
            "http2_port": http2_port,
        }
    )


def _tls_context(certificate: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return context


def _unix_listener(path: str) -> socket.socket:
    """A listening UNIX socket at ``path``; a file left by an earlier process of this instance is replaced."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    # nginx's workers run as another user (nobody) when the master is root; connecting needs write access.
    os.chmod(path, 0o666)
    listener.listen(SERVICE_BACKLOG)
    return listener


def _announce(message: dict[str, object]) -> None:
    # One short line per write: the launcher's children share one pipe, and writes
    # below PIPE_BUF bytes are atomic, so lines from several instances never interleave.
    os.write(sys.stdout.fileno(), (json.dumps(message) + "\n").encode())


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the instance bound no socket")


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        import uvloop
    except ImportError:  # uvloop is optional: the instance still works on asyncio's loop
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
