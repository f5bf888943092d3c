"""Loopback addresses and ports for the parts of a run."""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for an address in 127.0.0.0/8, ::1 or the name localhost; other names are not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel reports free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound now (nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def accepts_connections(host: str, port: int, timeout: float = 0.2) -> bool | None:
    """True when something listens on ``host:port``; None (not yet) otherwise, for WaitStrategy."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return None


def client_address(index: int) -> str:
    """The source address of the ``index``-th simulated client.

    nginx's ip_hash uses only the first three octets of an IPv4 address, so clients
    differ in the second and third octets: 127.10.0.1, 127.10.1.1, ... 127.10.255.1,
    127.11.0.1, ... They stay clear of 127.0.0.x (balancers) and 127.0.1.x (instances).
    """
    if not 0 <= index < 200 * 256:
        raise ValueError(f"client index {index} outside the supported range")
    second, third = divmod(index, 256)
    return f"127.{10 + second}.{third}.1"
