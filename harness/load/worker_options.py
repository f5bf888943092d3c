"""The options of a Locust worker of the harness (``harness worker``, and the workers it starts).

Kept apart from the worker itself so that the command line can list them without importing
Locust, which patches the standard library for gevent when it loads.
"""

from __future__ import annotations

import argparse
import socket
from ipaddress import IPv4Network
from pathlib import Path


def master_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a Locust master."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"--master takes HOST:PORT, got {text!r}")
    return host, int(port)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--master", type=master_address, required=True, help="the run's Locust master, HOST:PORT")
    parser.add_argument(
        "--url",
        help="the balancer's address as this host reaches it (default: the run's master sends its port, "
        "at the address of --master)",
    )
    parser.add_argument("--path", default="/api/count", help="with --url: the path requested (default /api/count)")
    parser.add_argument("--method", default="GET", help="with --url: the method (default GET)")
    parser.add_argument(
        "--runs", type=int, default=0, help="serve this many runs, then exit (default 0: run after run until stopped)"
    )
    parser.add_argument("--name", default=socket.gethostname(), help="this worker's name in the run (default: host)")
    parser.add_argument("--first-client", type=int, default=0, help="the index of the first client address")
    parser.add_argument("--host-header", help="with --url: the Host header of every request")
    parser.add_argument("--ca-file", type=Path, help="with --url: the CA that signed the balancer's cert")
    parser.add_argument("--clients", type=int, help="send from this many client addresses")
    parser.add_argument("--client-networks", type=int, help="... spread over this many /24 networks")
    parser.add_argument("--client-block", type=IPv4Network, help="send from this host's own block of addresses")
