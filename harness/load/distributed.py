"""Locust's distributed mode on loopback: a master in the harness, K worker processes.

Workers ship their per-request records to the master inside Locust's own stats reports
(the ``report_to_master`` / ``worker_report`` events), so records and Locust's request
counts travel in the same messages. At the end the master asks each worker to flush: the
worker sends one last report and then says it is done, and messages from one worker
arrive in order, so once every worker is done the master holds every record and every
count. Workers started on other hosts point at the same master the same way (``harness
worker``); on this machine, load hosts are simulated by namespaces (``harness.load.hosts``).
A worker that dies keeps what it reported: the records it held since its last report (every
three seconds) are lost with it, and ``lost()`` names it.

Run as ``python -m harness.load.distributed --master HOST:PORT --url URL ...`` it is a worker, with
the options of ``harness worker`` (which loads more of the harness before it starts).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.load.hosts import FRONT, SimulatedHosts
from harness.load.records import RequestRecorder
from harness.load.users import make_user_class
from harness.load.worker_options import add_worker_arguments
from harness.net import LOOPBACK, ClientPopulation
from harness.processes import spawn, terminate
from harness.readiness import WaitStrategy

RECORDS = "harness_records"
FLUSH = "harness_flush"
FLUSHED = "harness_flushed"
SENDER = "harness_sender"  # the worker's name in its reports: its load host's, or worker-N
CLIENTS_PER_WORKER = 1000  # each worker's users get source addresses of their own
# At the stop a worker's users finish the request they are in, so that every request the
# balancer answered is one the worker recorded; a request takes far less than this.
STOP_TIMEOUT_S = 10.0


Records = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True)
class LostWorker:
    """A worker that stopped before it sent its last records: what it had reported, and when last."""

    name: str
    records: int
    last_report_s: float | None  # seconds after the workers started; None: it never reported
    on_host: bool = True  # the worker of a load host; False: a worker process of this machine

    def describe(self) -> str:
        when = (
            f"its last report {self.last_report_s:.1f} s into the load"
            if self.last_report_s is not None
            else ("before its first report")
        )
        what = "load host" if self.on_host else "Locust worker"
        return (f"{what} {self.name} was lost, {when}: its {self.records:,} records reported are kept, "
                "the requests it sent after that are not in the run")  # fmt: skip


class Workers:
    """Worker processes connected to ``runner``; their request records go to ``on_records``.

    ``count`` processes on this machine, or one on each of ``hosts`` (simulated load hosts).
    """

    def __init__(
        self, runner: MasterRunner, on_records: Records, count: int, log_dir: Path,
        hosts: SimulatedHosts | None = None,
    ) -> None:  # fmt: skip
        self.runner = runner
        self.on_records = on_records
        self.hosts = hosts
        self.count = len(hosts.hosts) if hosts is not None else count
        self.log_dir = log_dir
        self._flushed: set[str] = set()
        self._processes: dict[str, Any] = {}  # worker name -> its process, until stopped
        self._names: list[str] = []
        self._reported: dict[str, int] = {}
        self._last_report: dict[str, float] = {}
        runner.environment.events.worker_report.add_listener(self._on_report)  # type: ignore[no-untyped-call]
        runner.register_message(FLUSHED, self._on_flushed)

    def _on_report(self, client_id: str, data: dict[str, Any]) -> None:
        records = data.get(RECORDS, [])
        sender = str(data.get(SENDER, client_id))
        self._reported[sender] = self._reported.get(sender, 0) + len(records)
        self._last_report[sender] = time.monotonic()
        self.on_records(records)

    def _on_flushed(self, msg: Any, **_: Any) -> None:
        self._flushed.add(str(msg.data["worker"]))

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
            target = urllib.parse.urlsplit(url)
            port = target.port or (443 if target.scheme == "https" else 80)
            self.hosts.forward(master_port, LOOPBACK)
            self.hosts.forward(port, target.hostname or LOOPBACK)
            url = target._replace(netloc=f"{FRONT}:{port}").geturl()
            master_host = FRONT
        for index in range(self.count):
            load_host = self.hosts.hosts[index] if self.hosts is not None else None
            name = load_host.name if load_host is not None else f"worker-{index + 1}"
            argv = [
                sys.executable, "-m", "harness.load.distributed", "--name", name,
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

    def flush(self) -> None:
        """Has every worker still running send what it holds; returns when all of them have."""
        self.runner.send_message(FLUSH)
        WaitStrategy("every Locust worker to send its last records", timeout=30.0, interval=0.05).wait(
            lambda: True if all(name in self._flushed for name in self._running()) else None
        )

    def _running(self) -> list[str]:
        return [name for name, process in self._processes.items() if process.poll() is None]

    def lost(self, load_started: float) -> list[LostWorker]:
        """The workers that stopped before they sent their last records; ``load_started``: when the
        load began (``time.monotonic()``), what their last reports are timed from."""
        lost = [name for name in self._names if name not in self._flushed]
        last = self._last_report
        return [
            LostWorker(
                name,
                self._reported.get(name, 0),
                last[name] - load_started if name in last else None,
                on_host=self.hosts is not None,
            )
            for name in lost
        ]

    def stop(self) -> None:
        for process in self._processes.values():
            terminate(process)
        self._processes = {}


def run_worker(args: argparse.Namespace) -> int:
    """A worker with ``add_worker_arguments``' options, until the master quits it."""
    logging.getLogger("locust").setLevel(logging.WARNING)
    population = ClientPopulation(args.clients, args.client_networks) if args.clients else None
    user_class = make_user_class(
        args.url, args.path, first_client=args.first_client, method=args.method,
        headers={"Host": args.host_header} if args.host_header else None, ca_file=args.ca_file,
        population=population, client_block=args.client_block,
    )  # fmt: skip
    environment = Environment(user_classes=[user_class], host=args.url)
    recorder = RequestRecorder()
    environment.events.request.add_listener(recorder.on_request)  # type: ignore[no-untyped-call]
    runner: WorkerRunner = environment.create_worker_runner(*args.master)

    def ship(client_id: str, data: dict[str, Any]) -> None:
        data[RECORDS], recorder.rows = recorder.rows, []
        data[SENDER] = args.name

    def flush(msg: Any, **_: Any) -> None:
        # The same report Locust sends every few seconds (its counts with our records),
        # once more now, then a note that nothing is left; the master reads them in order.
        runner._send_stats()
        runner.send_message(FLUSHED, {"worker": args.name})

    def graceful(**_: Any) -> None:
        # Locust's stop kills users mid-request unless stop_timeout is set, but the master's spawn
        # sets it (to 0 here), and after a stop the worker sleeps that long before it is ready
        # again: set only for the stop itself, it lets the users finish and costs no wait.
        environment.stop_timeout = STOP_TIMEOUT_S

    def stopped(**_: Any) -> None:
        environment.stop_timeout = 0.0

    environment.events.test_stopping.add_listener(graceful)  # type: ignore[no-untyped-call]
    environment.events.test_stop.add_listener(stopped)  # type: ignore[no-untyped-call]
    environment.events.report_to_master.add_listener(ship)  # type: ignore[no-untyped-call]
    runner.register_message(FLUSH, flush)
    runner.greenlet.join()
    return 0


def _worker(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.distributed")
    add_worker_arguments(parser)
    return run_worker(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_worker())
