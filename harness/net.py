"""Loopback addresses and ports for the parts of a run."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
# The run's address as its simulated load hosts see it (harness.load.hosts): the front of the
# run's network namespace, forwarded to the loopback ports the balancer and the master use.
LOAD_HOSTS_FRONT = "10.254.0.1"


def is_loopback(host: str) -> bool:
    """True for an address in 127.0.0.0/8, ::1 or the name localhost; other names are not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_and_port(url: str) -> tuple[str, int]:
    """The host and port of ``http(s)://HOST[:PORT]/...``, the scheme's port when it names none."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


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


MAX_CLIENT_NETWORKS = 200 * 256
HOSTS_PER_NETWORK = 254


@dataclass(frozen=True)
class ClientPopulation:
    """``clients`` client addresses spread over ``networks`` /24 networks, in turn: client i is
    host ``1 + i // networks`` of network ``i % networks`` (127.10.0.0/24, 127.10.1.0/24, ...).

    What a balancer sees of real traffic: 1,000 clients behind 4 NAT addresses are 4 clients
    (``ClientPopulation(4, 4)``); 1,000 clients of one office are one /24 (``(1000, 4)`` is four)."""

    clients: int
    networks: int

    def __post_init__(self) -> None:
        if not 1 <= self.networks <= min(self.clients, MAX_CLIENT_NETWORKS):
            raise ValueError(f"networks must be between 1 and {min(self.clients, MAX_CLIENT_NETWORKS)}")
        if self.clients > HOSTS_PER_NETWORK * self.networks:
            raise ValueError(f"{self.clients} clients do not fit in {self.networks} /24 networks")

    def address(self, index: int) -> str:
        client = index % self.clients
        network, host = client % self.networks, 1 + client // self.networks
        second, third = divmod(network, 256)
        return f"127.{10 + second}.{third}.{host}"

    def addresses(self) -> list[str]:
        return [self.address(index) for index in range(self.clients)]

    def describe(self) -> str:
        where = "one /24 network" if self.networks == 1 else f"{self.networks:,} /24 networks"
        return f"{self.clients:,} clients from {where}"


_CLIENTS_FROM = int(ipaddress.IPv4Address("127.10.0.0"))


def relocated(address: str, block: ipaddress.IPv4Network) -> str:
    """A client address of the loopback's client range (127.10.0.0 on) at the same offset in
    ``block``: the clients of a load host on a network of its own."""
    offset = int(ipaddress.IPv4Address(address)) - _CLIENTS_FROM
    if not 0 <= offset < block.num_addresses:
        raise ValueError(f"client {address} has no place in {block}")
    return str(block.network_address + offset)


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
