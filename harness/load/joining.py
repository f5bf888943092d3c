"""Workers that join a run from the user's own machines: how many, and where the run listens for them.

``harness bench --join-workers N --bind ADDR`` has the balancer's route and Locust's master
listen on ADDR, waits for N ``harness worker --master ADDR:PORT`` to join, and runs the whole
load from them. Kept apart from the master's code so that the command line and the spec can
read it without importing Locust.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from harness.net import LOOPBACK

LOCUST_MASTER_PORT = 5557  # Locust's own default, the port its workers try first
MAX_JOINED_WORKERS = 64
WILDCARD = "0.0.0.0"


def joining_name(bind: str) -> str:
    """How workers reach a run listening on ``bind``: at that address, or at this host's name for every address."""
    return socket.gethostname() if bind == WILDCARD else bind


def joining_names(bind: str) -> tuple[str, ...]:
    """Every name workers may join a run listening on ``bind`` at, for its certificates: on every
    address, the host's name, its full name and its addresses."""
    if bind != WILDCARD:
        return (bind,)
    host = socket.gethostname()
    try:
        addresses = socket.gethostbyname_ex(host)[2]
    except OSError:
        addresses = []
    return tuple(dict.fromkeys([host, socket.getfqdn(), *addresses]))


@dataclass(frozen=True)
class Joining:
    """``count`` workers join at ``bind``:``master_port`` within ``timeout`` seconds."""

    count: int
    bind: str = LOOPBACK  # the balancer's route and Locust's master listen here
    master_port: int = LOCUST_MASTER_PORT
    timeout: float = 300.0

    @property
    def reach(self) -> str:
        """The address the workers are told to join at."""
        return joining_name(self.bind)

    @property
    def master(self) -> str:
        return f"{self.reach}:{self.master_port}"

    def describe(self) -> str:
        workers = f"{self.count} Locust worker{'s' if self.count > 1 else ''}"
        on_loopback = self.bind.startswith("127.")
        where = "on this machine (other machines need --bind ADDR)" if on_loopback else "on each load host"
        return (
            f"the load of each run waits up to {self.timeout:g} s for {workers} to join: "
            f"{where} run `harness worker --master {self.master}`"
        )
