"""What the balancers that run as a process (nginx, HAProxy, Caddy) have in common: a master the
harness owns, a loopback port, a graceful reload, a graceful stop, the route's TLS."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import IO, Self

from harness.balancers.base import BalancerDefaults
from harness.errors import StartupError
from harness.load.joining import WILDCARD, joining_names
from harness.load.route import FixedRoute
from harness.net import LOOPBACK
from harness.processes import children_of, spawn, terminate
from harness.readiness import WaitStrategy
from harness.runtimes.base import BalancerContainer

__all__ = ["BalancerContainer", "BalancerProcess"]


class BalancerProcess(BalancerDefaults):
    """Base of the balancer classes; a context manager that stops the balancer on exit."""

    name = "balancer"
    reload_signal: int
    stop_signal: int

    def __init__(
        self, run_dir: Path, port: int | None, container: BalancerContainer | None = None, address: str = LOOPBACK
    ) -> None:
        self.run_dir = run_dir
        # The route's listen: on loopback, or on an address the workers of other machines reach.
        self.address = address
        self.requested_port = port
        self.port = 0
        self.container = container  # run the balancer in a container of this, rather than as a process
        self._process: subprocess.Popen[bytes] | None = None
        # Each reload: when the signal went (wall clock) and the worker pids it retired.
        self.retired_workers: list[tuple[float, frozenset[int]]] = []

    @property
    def reach(self) -> str:
        """The address this machine connects to the route's listen at."""
        return LOOPBACK if self.address == WILDCARD else self.address

    @property
    def route_socket(self) -> str:
        """The route's listen, ``ADDRESS:PORT``."""
        return f"{self.address}:{self.port}"

    @property
    def address_names(self) -> tuple[str, ...]:
        """What the run's certificates name besides the usual names: the address workers join at."""
        return joining_names(self.address)

    @property
    def url(self) -> str:
        scheme = "https" if self.route_tls_ca() else "http"
        return f"{scheme}://{self.reach}:{self.port}"

    @property
    def route(self) -> FixedRoute:
        """Every client request goes to the balancer's address."""
        return FixedRoute(self.url)

    def route_tls_ca(self) -> Path | None:
        """The CA of the certificate the route's listen serves, when it serves TLS; None: plain HTTP."""
        return None

    def _route_at(self, host: str | None, prefix: str) -> FixedRoute:
        """The balancer's address with the Host and path prefix the route under test is reached on."""
        return FixedRoute(self.url, host=host, prefix=prefix, ca_file=self.route_tls_ca())

    @property
    def rewrites_path(self) -> Path:
        """What the run changed in the user's config, one line each (with the user's file and line
        where the balancer's config has lines); read back for the run's notes."""
        return self.run_dir / "rewrites.txt"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    @property
    def pid(self) -> int | None:
        """The balancer's master process (in a container: its pid on this host)."""
        if self._process is None:
            return None
        if self.container is not None:
            return self.container.master_pid(self.name)
        return self._process.pid

    def _spawn(
        self, argv: list[str], log: Path, stdout: IO[bytes] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Starts the balancer in the foreground: as a process, or as ``docker run`` of its container."""
        if self.container is not None:
            argv = self.container.command(argv, self.run_dir, self.name)
        return spawn(argv, log, stdout=stdout, env=env)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _replace_workers(self, log: Path | None) -> float:
        """Sends the reload signal and waits until every old worker has exited (so their
        requests are done); returns the seconds it took."""
        if self._process is None or self._process.poll() is not None:
            raise StartupError(f"{self.name} is not running: nothing to reload")
        started = time.monotonic()
        master = self.pid
        if master is None:
            raise StartupError(f"{self.name}'s master process is not running: nothing to reload")
        old_workers = set(children_of(master))
        self.retired_workers.append((time.time(), frozenset(old_workers)))
        os.kill(master, self.reload_signal)

        def replaced() -> bool | None:
            current = set(children_of(master))
            return True if current and not current & old_workers else None

        WaitStrategy(f"{self.name} reload (old workers to exit)", timeout=30.0, log=log).wait(replaced)
        return time.monotonic() - started

    def stop(self) -> None:
        """Graceful stop (workers finish their requests), SIGKILL after 5 s; safe to call twice."""
        if self._process is not None:
            process, self._process = self._process, None
            terminate(process, grace=5.0, signum=self.stop_signal)
