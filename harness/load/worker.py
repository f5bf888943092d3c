"""A Locust worker of the harness: ``harness worker``, on this machine or on a load host of the user's.

Started with ``--url`` it sends ``--method --path`` there from the start (the workers a run starts
itself). Started with ``--master`` alone it joins a run from another machine: the run's master
sends it the target (scheme, port, path, Host, the CA of the run's certificates) when it joins,
and the worker sends to that port at the address it reached the master at, from its own address
(or from ``--client-block``, a block of addresses routed to this host). It serves one run after
another until ``--runs`` are done or it is stopped: ``harness bench --algo all`` starts a master
per algorithm on the same port.

Run as ``python -m harness.load.worker --master HOST:PORT ...`` it is the worker without the rest
of the command line.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gevent.event
import locust  # noqa: F401  (first: Locust patches the standard library for gevent before ssl is imported)
from locust import User
from locust.env import Environment
from locust.rpc import Message
from locust.runners import WorkerRunner

from harness.load.records import RequestRecorder
from harness.load.users import make_user_class
from harness.load.worker_options import add_worker_arguments
from harness.load.worker_reports import FLUSH, FLUSHED, JOINED, RECORDS, SENDER, TARGET, Target
from harness.net import ClientPopulation, host_and_port

# At the stop a worker's users finish the request they are in, so that every request the
# balancer answered is one the worker recorded; a request takes far less than this.
STOP_TIMEOUT_S = 10.0
# A run's master answers a worker's name at once while it waits for workers; one that does not
# is ending (its quit takes half a second, in which it still takes workers): join the next.
TARGET_WAIT_S = 5.0


def source_toward(host: str, port: int) -> str:
    """The address this machine sends from to ``host``: what the balancer sees as the client.

    A UDP socket's connect sends nothing; it only has the kernel choose the route and source.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, port))
        return str(probe.getsockname()[0])


class _WorkerRun:
    """One run served: the users' class, built from the options or from the master's target."""

    def __init__(self, args: argparse.Namespace, ca_dir: Path) -> None:
        self.args = args
        self.ca_dir = ca_dir
        self.recorder = RequestRecorder()
        self.name = args.name  # the run may rename it, to keep the names of its workers apart
        self.targeted = gevent.event.Event()
        self.spawned = False  # the run gave this worker users (a run that ended while it waited did not)
        classes = []
        if args.url:
            classes = [self._user_class(args.url, args.path, args.method, args.host_header, args.ca_file)]
        self.environment = Environment(user_classes=classes, host=args.url)
        self.environment.events.request.add_listener(self.recorder.on_request)  # type: ignore[no-untyped-call]
        self.runner: WorkerRunner = self.environment.create_worker_runner(*args.master)

    def _user_class(
        self, url: str, path: str, method: str, host_header: str | None, ca_file: Path | None, source: str | None = None
    ) -> type[User]:
        """``source``: every user sends from this address (a joined worker without a block of its own)."""
        args = self.args
        population = ClientPopulation(args.clients, args.client_networks) if args.clients else None
        return make_user_class(
            url, path, first_client=args.first_client, method=method,
            headers={"Host": host_header} if host_header else None, ca_file=ca_file,
            population=population, client_block=args.client_block, source_address=source,
        )  # fmt: skip

    def on_target(self, msg: Any, **_: Any) -> None:
        """The master's target: this run's users are built for it (before its spawn, which follows)."""
        target = Target(**msg.data)
        self.name = target.name or self.name
        ca_file = None
        if target.ca_pem:
            ca_file = self.ca_dir / "ca.pem"
            ca_file.write_text(target.ca_pem)
        url = self.args.url or f"{target.scheme}://{self.args.master[0]}:{target.port}"
        block, source = self.args.client_block, None
        if block is None and not self.args.clients:
            source = source_toward(*host_and_port(url))
        user_class = self._user_class(url, target.path, target.method, target.host_header, ca_file, source)
        self.environment.user_classes = [user_class]
        self.environment.host = url
        # The worker's own line for each run it joins: where its load goes, and from where.
        sender = source or block or "its --clients addresses"
        print(f"{self.name}: joined a run, {target.method} {target.path} to {url} from {sender}", flush=True)
        self.targeted.set()

    def serve(self) -> bool:
        """Until the master quits this worker; True when it sent load in the run."""
        args, environment, runner = self.args, self.environment, self.runner

        def ship(client_id: str, data: dict[str, Any]) -> None:
            data[RECORDS], self.recorder.rows = self.recorder.rows, []
            data[SENDER] = self.name

        def flush(msg: Any, **_: Any) -> None:
            # The same report Locust sends every few seconds (its counts with our records),
            # once more now, then a note that nothing is left; the master reads them in order.
            runner._send_stats()
            runner.send_message(FLUSHED, {"worker": self.name})

        def graceful(**_: Any) -> None:
            # Locust's stop kills users mid-request unless stop_timeout is set, but the master's spawn
            # sets it (to 0 here), and after a stop the worker sleeps that long before it is ready
            # again: set only for the stop itself, it lets the users finish and costs no wait.
            environment.stop_timeout = STOP_TIMEOUT_S

        def stopped(**_: Any) -> None:
            environment.stop_timeout = 0.0

        def started(**_: Any) -> None:
            self.spawned = True

        environment.events.test_stopping.add_listener(graceful)  # type: ignore[no-untyped-call]
        environment.events.test_stop.add_listener(stopped)  # type: ignore[no-untyped-call]
        environment.events.test_start.add_listener(started)  # type: ignore[no-untyped-call]
        environment.events.report_to_master.add_listener(ship)  # type: ignore[no-untyped-call]
        runner.register_message(FLUSH, flush)
        runner.register_message(TARGET, self.on_target)
        # Messages to the master go in order: it reads the name after the worker's ready.
        runner.send_message(JOINED, {"worker": args.name})
        try:
            if not args.url and not self.targeted.wait(TARGET_WAIT_S):
                return False
            runner.greenlet.join()
            return self.spawned
        except KeyboardInterrupt:
            # Stopped by its user: its users finish the request they are in (the stop's timeout), it
            # sends every record, then quits, so that the run stops counting on it at once.
            runner.stop()
            runner._send_stats()
            runner.client.send(Message("quit", None, runner.client_id))  # type: ignore[no-untyped-call]
            raise
        finally:
            runner.greenlet.kill(block=True)
            runner.client.close(linger=0)  # type: ignore[no-untyped-call]


def run_worker(args: argparse.Namespace) -> int:
    """A worker with ``add_worker_arguments``' options: runs served until ``args.runs`` (0: no end)."""
    logging.getLogger("locust").setLevel(logging.WARNING)
    if args.clients and not args.url and args.client_block is None:
        print(
            "harness worker: --clients sends from loopback addresses, which reach a run on this machine only: "
            "give --client-block too, or drop --clients",
            file=sys.stderr,
        )
        return 2
    served = 0
    with tempfile.TemporaryDirectory(prefix="lbh-worker-") as ca_dir:
        while not args.runs or served < args.runs:
            try:
                run = _WorkerRun(args, Path(ca_dir))
            except ConnectionError:
                host, port = args.master
                print(f"harness worker: no Locust master answered at {host}:{port}", file=sys.stderr)
                return 1
            served += run.serve()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.worker")
    add_worker_arguments(parser)
    return run_worker(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
