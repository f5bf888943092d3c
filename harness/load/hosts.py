"""Load hosts simulated on this machine: a network namespace each, wired to the run's.

Each host is a namespace of the harness's own with one veth pair to the namespace the run
lives in (balancer, instances, Locust's master). Host i is 10.255.i.2 on its side of the pair
and the run 10.255.i.1 on the other. The host sends from any address of its own block,
10.(32(i-1)).0.0/11: one route makes the whole block local to it (``ip route add local``), so
thousands of client addresses need no address each, and the run routes the block back through
the pair. The run is reached at one front address, 10.254.0.1, whose ports the run's own
nftables table forwards to the loopback ports the balancer and Locust's master listen on: their
configs stay as they are.

Nothing here touches the machine's own network: both ends of every pair, the routes and the
table live in namespaces the harness made, and deleting them (or the reaper, if the harness
dies first) removes all of it.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from harness import reaper
from harness.net import LOAD_HOSTS_FRONT
from harness.netns import ip_binary, nft_binary, run_ip

FRONT = LOAD_HOSTS_FRONT  # the run's address as the load hosts see it
MAX_LOAD_HOSTS = 7  # a /11 of 10.0.0.0/8 each, clear of 10.224.0.0/11 (the front and the pairs)
_BLOCK_PREFIX = 11
_TABLE = "lbh_front"


@dataclass(frozen=True)
class LoadHost:
    """One simulated host: its namespace, its address on the pair, its block of client addresses."""

    index: int  # from 1
    namespace: str

    @property
    def name(self) -> str:
        return f"load-host-{self.index}"

    @property
    def address(self) -> str:
        return f"10.255.{self.index}.2"

    @property
    def gateway(self) -> str:
        return f"10.255.{self.index}.1"

    @property
    def client_block(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.{32 * (self.index - 1)}.0.0/{_BLOCK_PREFIX}")

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the host's namespace (``ip netns exec`` execs it: the pid is argv's)."""
        return [ip_binary(), "netns", "exec", self.namespace, *argv]


class SimulatedHosts:
    """``count`` load hosts attached to the namespace ``run_namespace`` (which the run is in)."""

    def __init__(self, count: int, run_namespace: str) -> None:
        if not 1 <= count <= MAX_LOAD_HOSTS:
            raise ValueError(f"between 1 and {MAX_LOAD_HOSTS} load hosts, got {count}")
        token = secrets.token_hex(3)
        self.run_namespace = run_namespace
        self.hosts = [LoadHost(index, f"lbh-{token}-h{index}") for index in range(1, count + 1)]
        self._made: list[str] = []

    def __enter__(self) -> SimulatedHosts:
        try:
            run = self.run_namespace
            run_ip("-n", run, "addr", "add", f"{FRONT}/32", "dev", "lo")
            chain = "{ type nat hook prerouting priority dstnat; }"
            self._nft(f"add table ip {_TABLE}\nadd chain ip {_TABLE} prerouting {chain}\n")
            for host in self.hosts:
                reaper.watch_netns(host.namespace)  # first: a harness killed right after the add leaves nothing
                run_ip("netns", "add", host.namespace)
                self._made.append(host.namespace)
                pair = f"lbh-h{host.index}"
                run_ip("-n", run, "link", "add", pair, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
                run_ip("-n", run, "addr", "add", f"{host.gateway}/24", "dev", pair)
                run_ip("-n", run, "link", "set", pair, "up")
                run_ip("-n", run, "route", "add", str(host.client_block), "via", host.address)
                for link in ("lo", "eth0"):
                    run_ip("-n", host.namespace, "link", "set", link, "up")
                run_ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                run_ip("-n", host.namespace, "route", "add", "default", "via", host.gateway)
                run_ip("-n", host.namespace, "route", "add", "local", str(host.client_block), "dev", "lo")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def describe(self, clients: Iterable[str]) -> str:
        """Where the load came from: each host's requests, given the client address of every request."""
        per_client = Counter(clients)
        sent = {
            host.name: sum(count for client, count in per_client.items()
                           if ipaddress.IPv4Address(client) in host.client_block)
            for host in self.hosts
        }  # fmt: skip
        each = ", ".join(
            f"{host.name} ({host.address}, clients from {host.client_block}) {sent[host.name]:,}" for host in self.hosts
        )
        return f"load from {len(self.hosts)} hosts (network namespaces of the run, reaching it at {FRONT}): {each}"

    def forward(self, port: int, to_host: str) -> None:
        """Connections from the hosts to the front's ``port`` go to ``to_host``:``port`` in the run."""
        self._nft(f"add rule ip {_TABLE} prerouting ip daddr {FRONT} tcp dport {port} dnat to {to_host}:{port}\n")

    def _nft(self, rules: str) -> None:
        done = subprocess.run(
            [ip_binary(), "netns", "exec", self.run_namespace, nft_binary(), "-f", "-"],
            input=rules, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise OSError(f"nft refused the load hosts' forwarding: {done.stderr.strip()}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The pairs go with the host namespaces; the front and its table with the run's.
        for namespace in self._made:
            subprocess.run([ip_binary(), "netns", "delete", namespace], capture_output=True, check=False)
            reaper.forget_netns(namespace)
        self._made = []
