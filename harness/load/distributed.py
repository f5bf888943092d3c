"""Locust's distributed mode with workers the run starts: K processes on this machine, or one on
each simulated load host (``harness.load.hosts``). Their records reach the master as
``harness.load.worker_reports`` describes; workers on the user's own machines join a run
instead (``harness.load.joined_workers``).
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import Any

from locust.runners import MasterRunner

from harness.load.hosts import FRONT, SimulatedHosts
from harness.load.worker_reports import LostWorker, Records, WorkerReports
from harness.net import LOOPBACK, ClientPopulation, host_and_port
from harness.processes import spawn, terminate
from harness.readiness import WaitStrategy

__all__ = ["CLIENTS_PER_WORKER", "LostWorker", "Workers"]

CLIENTS_PER_WORKER = 1000  # each worker's users get source addresses of their own


class Workers(WorkerReports):
    """Worker processes connected to ``runner``; their request records go to ``on_records``.

    ``count`` processes on this machine, or one on each of ``hosts`` (simulated load hosts).
    """

    def __init__(
        self, runner: MasterRunner, on_records: Records, count: int, log_dir: Path,
        hosts: SimulatedHosts | None = None,
    ) -> None:  # fmt: skip
        super().__init__(runner, on_records)
        self.on_host = hosts is not None
        self.hosts = hosts
        self.count = len(hosts.hosts) if hosts is not None else count
        self.log_dir = log_dir
        self._processes: dict[str, Any] = {}  # worker name -> its process, until stopped
        self._names: list[str] = []

    def names(self) -> list[str]:
        return list(self._names)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    def start(
        self,
        url: str,
        path: str,
        method: str,
        host: str | None = None,
        ca_file: Path | None = None,
        population: ClientPopulation | None = None,
    ) -> None:
        """Starts the workers and returns once all of them have connected; ``host`` is the Host header."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        master_host, master_port = LOOPBACK, self.runner.master_bind_port
        if self.hosts is not None:
            # The hosts reach the balancer and the master at the front address, forwarded here.
            host, port = host_and_port(url)
            self.hosts.forward(master_port, LOOPBACK)
            self.hosts.forward(port, host or LOOPBACK)
            url = urllib.parse.urlsplit(url)._replace(netloc=f"{FRONT}:{port}").geturl()
            master_host = FRONT
        for index in range(self.count):
            load_host = self.hosts.hosts[index] if self.hosts is not None else None
            name = load_host.name if load_host is not None else f"worker-{index + 1}"
            argv = [
                sys.executable, "-m", "harness.load.worker", "--name", name, "--runs", "1",
                "--master", f"{master_host}:{master_port}", "--url", url, "--path", path,
                "--method", method,
                *(["--client-block", str(load_host.client_block)] if load_host is not None
                  else ["--first-client", str((index + 1) * CLIENTS_PER_WORKER)]),
                *(["--host-header", host] if host else []), *(["--ca-file", str(ca_file)] if ca_file else []),
                *(["--clients", str(population.clients), "--client-networks", str(population.networks)]
                  if population else []),
            ]  # fmt: skip
            command = load_host.command(argv) if load_host is not None else argv
            self._processes[name] = spawn(command, self.log_dir / f"load-{name}.log")
            self._names.append(name)
        WaitStrategy(f"{self.count} Locust workers to connect", timeout=30.0, interval=0.05).wait(
            lambda: True if self.runner.worker_count >= self.count else self._none_exited()
        )

    def _none_exited(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"Locust worker {name} exited ({process.returncode}); see its log, load-{name}.log")

    def running(self) -> list[str]:
        return [name for name, process in self._processes.items() if process.poll() is None]

    def stop(self) -> None:
        for process in self._processes.values():
            terminate(process)
        self._processes = {}
