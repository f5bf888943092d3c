"""What Locust's master in the harness hears from its workers: records inside Locust's own stats
reports, the last flush at the end, and which workers were lost before it.

Workers ship their per-request records inside Locust's reports (the ``report_to_master`` /
``worker_report`` events), so records and Locust's request counts travel in the same messages.
At the end the master asks each worker to flush: the worker sends one last report and then says
it is done, and messages from one worker arrive in order, so once every worker is done the
master holds every record and every count. A worker that dies keeps what it reported: the
records it held since its last report (every three seconds) are lost with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from locust.runners import MasterRunner

from harness.readiness import WaitStrategy

RECORDS = "harness_records"
FLUSH = "harness_flush"
FLUSHED = "harness_flushed"
SENDER = "harness_sender"  # the worker's name in its reports: its load host's, or worker-N
JOINED = "harness_joined"  # a worker's first message: its name
TARGET = "harness_target"  # the master's answer to a worker that joined: what to send where (a Target)


@dataclass(frozen=True)
class Target:
    """What the workers that join a run send, and where: the balancer's port at the address they
    reached the master at. Travels as a dict (``dataclasses.asdict``) in Locust's messages."""

    scheme: str
    port: int
    path: str
    method: str
    host_header: str | None = None  # the Host the route is reached on
    ca_pem: str | None = None  # the CA of the balancer's certificate, for an https route
    name: str = ""  # the worker's name in the run (the one it asked for, made unique)


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


class WorkerReports:
    """The records of ``runner``'s workers go to ``on_records``; which of them flushed, which were lost.

    A subclass says which workers the run has (``names``) and which of them still run (``running``).
    """

    on_host = True  # a lost worker is named as a load host's

    def __init__(self, runner: MasterRunner, on_records: Records) -> None:
        self.runner = runner
        self.on_records = on_records
        self._flushed: set[str] = set()
        self.reported: dict[str, int] = {}  # records per worker name
        self._last_report: dict[str, float] = {}
        runner.environment.events.worker_report.add_listener(self._on_report)  # type: ignore[no-untyped-call]
        runner.register_message(FLUSHED, self._on_flushed)
        runner.register_message(JOINED, self._on_joined)

    def names(self) -> list[str]:
        raise NotImplementedError

    def running(self) -> list[str]:
        raise NotImplementedError

    def sender(self, client_id: str, data: dict[str, Any]) -> str:
        """The name of the worker behind a report."""
        return str(data.get(SENDER, client_id))

    def records_by_worker(self) -> dict[str, int]:
        """The records each worker of the run reported."""
        return {name: self.reported.get(name, 0) for name in self.names()}

    def _on_report(self, client_id: str, data: dict[str, Any]) -> None:
        records = data.get(RECORDS, [])
        if not records:
            return  # a worker reports before and between loads too: its last report is its last records'
        sender = self.sender(client_id, data)
        self.reported[sender] = self.reported.get(sender, 0) + len(records)
        self._last_report[sender] = time.monotonic()
        self.on_records(records)

    def _on_flushed(self, msg: Any, **_: Any) -> None:
        self._flushed.add(str(msg.data["worker"]))

    def _on_joined(self, msg: Any, **_: Any) -> None:
        """A worker's first message, with its name; workers the run starts are known by theirs already."""

    def flush(self) -> None:
        """Has every worker still running send what it holds; returns when all of them have."""
        self.runner.send_message(FLUSH)
        WaitStrategy("every Locust worker to send its last records", timeout=30.0, interval=0.05).wait(
            lambda: True if all(name in self._flushed for name in self.running()) else None
        )

    def lost(self, load_started: float) -> list[LostWorker]:
        """The workers that stopped before they sent their last records; ``load_started``: when the
        load began (``time.monotonic()``), what their last reports are timed from."""
        last = self._last_report
        return [
            LostWorker(
                name,
                self.reported.get(name, 0),
                last[name] - load_started if name in last else None,
                on_host=self.on_host,
            )
            for name in self.names()
            if name not in self._flushed
        ]
