"""A network namespace of the harness's own, entered for a whole run.

Kernel rules (kube-proxy's nftables balancing) must never touch the machine's own network
stack, so such a run happens inside a namespace the harness creates (``ip netns add``),
with its loopback up and ``route_localnet`` set (so a Service address on loopback may be
translated to a 127.0.0.0/8 endpoint). The harness's main thread enters it with setns(2),
so every process it starts (instances, probes' sockets, Locust's connections) lives there
too; leaving puts the thread back and deletes the namespace. The reaper deletes it if the
harness dies first.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
from pathlib import Path
from types import TracebackType

from harness import reaper
from harness.errors import ToolMissingError
from harness.tools import find_program

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def run_ip(*args: str) -> None:
    """iproute2's ``ip`` with ``args``; OSError with its message if it refuses."""
    done = subprocess.run([ip_binary(), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def ip_binary() -> str:
    """iproute2's ``ip``, on PATH or in /usr/sbin; ToolMissingError says how to install it."""
    found = find_program("ip")
    if found is None:
        raise ToolMissingError("iproute2 is not installed: apt-get install iproute2")
    return found


def nft_binary() -> str:
    """nftables' ``nft``; ToolMissingError says how to install it."""
    found = find_program("nft")
    if found is None:
        raise ToolMissingError("nft is not installed: apt-get install nftables (make setup installs it)")
    return found


class NetworkNamespace:
    def __init__(self, addresses: tuple[str, ...] = ()) -> None:
        ip_binary()
        self.name = f"lbh-{secrets.token_hex(4)}"
        self.addresses = addresses  # extra addresses on its loopback (a Service's ClusterIP)
        self._home: int | None = None

    def __enter__(self) -> NetworkNamespace:
        reaper.watch_netns(self.name)  # first: a harness killed right after the add leaves nothing
        run_ip("netns", "add", self.name)
        try:
            run_ip("-n", self.name, "link", "set", "lo", "up")
            for address in self.addresses:
                run_ip("-n", self.name, "addr", "add", f"{address}/32", "dev", "lo")
            self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
            target = os.open(Path("/run/netns") / self.name, os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            Path("/proc/sys/net/ipv4/conf/all/route_localnet").write_text("1\n")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None
        subprocess.run([ip_binary(), "netns", "delete", self.name], capture_output=True, check=False)
        reaper.forget_netns(self.name)
