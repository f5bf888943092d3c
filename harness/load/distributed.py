"""Locust's distributed mode on loopback: a master in the harness, K worker processes.

Workers ship their per-request records to the master inside Locust's own stats reports
(the ``report_to_master`` / ``worker_report`` events), so records and Locust's request
counts travel in the same messages. At the end the master asks each worker to flush: the
worker sends one last report and then says it is done, and messages from one worker
arrive in order, so once every worker is done the master holds every record and every
count. Workers started on other hosts point at the same master the same way.

Run as ``python -m harness.load.distributed --master-port P --url URL ...`` it is a worker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.load.records import RequestRecorder
from harness.load.users import make_user_class
from harness.net import LOOPBACK, ClientPopulation
from harness.processes import spawn, terminate
from harness.readiness import WaitStrategy

RECORDS = "harness_records"
FLUSH = "harness_flush"
FLUSHED = "harness_flushed"
CLIENTS_PER_WORKER = 1000  # each worker's users get source addresses of their own


Records = Callable[[list[dict[str, Any]]], None]


class Workers:
    """K worker processes connected to ``runner``; their request records go to ``on_records``."""

    def __init__(self, runner: MasterRunner, on_records: Records, count: int, log_dir: Path) -> None:
        self.runner = runner
        self.on_records = on_records
        self.count = count
        self.log_dir = log_dir
        self._flushed: set[str] = set()
        self._processes: list[Any] = []
        runner.environment.events.worker_report.add_listener(self._on_report)  # type: ignore[no-untyped-call]
        runner.register_message(FLUSHED, self._on_flushed)

    def _on_report(self, client_id: str, data: dict[str, Any]) -> None:
        self.on_records(data.get(RECORDS, []))

    def _on_flushed(self, msg: Any, **_: Any) -> None:
        self._flushed.add(str(msg.data["worker"]))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

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
        for index in range(self.count):
            argv = [
                sys.executable, "-m", "harness.load.distributed",
                "--master-port", str(self.runner.master_bind_port), "--url", url, "--path", path,
                "--method", method, "--first-client", str((index + 1) * CLIENTS_PER_WORKER),
                *(["--host-header", host] if host else []), *(["--ca-file", str(ca_file)] if ca_file else []),
                *(["--clients", str(population.clients), "--client-networks", str(population.networks)]
                  if population else []),
            ]  # fmt: skip
            self._processes.append(spawn(argv, self.log_dir / f"load-worker-{index + 1}.log"))
        WaitStrategy(f"{self.count} Locust workers to connect", timeout=30.0, interval=0.05).wait(
            lambda: True if self.runner.worker_count >= self.count else None
        )

    def flush(self) -> None:
        """Has every worker send what it still holds; returns when all have."""
        self.runner.send_message(FLUSH)
        WaitStrategy("every Locust worker to send its last records", timeout=30.0, interval=0.05).wait(
            lambda: True if len(self._flushed) >= self.count else None
        )

    def stop(self) -> None:
        for process in self._processes:
            terminate(process)
        self._processes = []


def _worker(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.distributed")
    parser.add_argument("--master-host", default=LOOPBACK)
    parser.add_argument("--master-port", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/api/count")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--first-client", type=int, default=0)
    parser.add_argument("--host-header")
    parser.add_argument("--ca-file", type=Path)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--client-networks", type=int)
    args = parser.parse_args(argv)
    population = ClientPopulation(args.clients, args.client_networks) if args.clients else None
    user_class = make_user_class(
        args.url, args.path, first_client=args.first_client, method=args.method,
        headers={"Host": args.host_header} if args.host_header else None, ca_file=args.ca_file,
        population=population,
    )  # fmt: skip
    environment = Environment(user_classes=[user_class], host=args.url)
    recorder = RequestRecorder()
    environment.events.request.add_listener(recorder.on_request)  # type: ignore[no-untyped-call]
    runner: WorkerRunner = environment.create_worker_runner(args.master_host, args.master_port)

    def ship(client_id: str, data: dict[str, Any]) -> None:
        data[RECORDS], recorder.rows = recorder.rows, []

    def flush(msg: Any, **_: Any) -> None:
        # The same report Locust sends every few seconds (its counts with our records),
        # once more now, then a note that nothing is left; the master reads them in order.
        runner._send_stats()
        runner.send_message(FLUSHED, {"worker": runner.client_id})

    environment.events.report_to_master.add_listener(ship)  # type: ignore[no-untyped-call]
    runner.register_message(FLUSH, flush)
    runner.greenlet.join()
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
