"""Workers that join a run from machines of the user's own (``harness worker --master ADDR:PORT``).

Each says its name when it joins (``JOINED``); the master answers it alone with the run's
target (``TARGET``): the balancer's port, path, Host and CA, and the worker's name in the run,
made unique. The door closes when the load starts: Locust's master would hand a worker that
connects later a share of the users before it has its target, so its ``client_ready`` goes
unanswered and Locust's own retry (every 5 s) brings it to the next run's master. A worker that
stops answering Locust's heartbeats counts as gone: the run waits for the last records of the
others only, and names it as lost.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from locust.rpc import Message
from locust.runners import STATE_MISSING, MasterRunner

from harness.errors import StartupError
from harness.load.joining import Joining
from harness.load.worker_reports import TARGET, Records, Target, WorkerReports
from harness.readiness import WaitStrategy


class JoinedWorkers(WorkerReports):
    """The workers that join ``runner`` as ``joining`` asks; each is sent ``target``."""

    def __init__(self, runner: MasterRunner, on_records: Records, joining: Joining, target: Target) -> None:
        super().__init__(runner, on_records)
        self.joining = joining
        self.target = target
        self._joined: dict[str, str] = {}  # name in the run -> Locust's client id
        self._names: dict[str, str] = {}  # Locust's client id -> name in the run
        self.open = True  # workers are taken until the load starts
        # Workers between their stop and their ready again: out of Locust's clients, still running.
        self._stopped: set[str] = set()
        handle = runner.handle_message

        def handle_unless_late(client_id: str, msg: Message) -> None:
            if msg.type == "client_ready" and not self.open and client_id not in self._names:
                return  # unanswered: the worker asks again, and the next run's master answers
            if msg.type == "client_stopped":
                self._stopped.add(client_id)
            elif msg.type in ("client_ready", "quit"):
                self._stopped.discard(client_id)
            handle(client_id, msg)

        # Locust's listener calls the runner's handle_message for every message: the one place to
        # see a worker connect before the master hands it users.
        runner.handle_message = handle_unless_late  # type: ignore[method-assign]

    def _on_joined(self, msg: Any, **_: Any) -> None:
        wanted = str(msg.data["worker"]) or "worker"
        name, number = wanted, 1
        while name in self._joined:
            number += 1
            name = f"{wanted}-{number}"
        self._joined[name] = msg.node_id
        self._names[msg.node_id] = name
        target = dataclasses.replace(self.target, name=name)
        self.runner.send_message(TARGET, dataclasses.asdict(target), client_id=msg.node_id)

    def sender(self, client_id: str, data: dict[str, Any]) -> str:
        # By the connection: a worker's first report can come before it has its name in the run.
        return self._names.get(client_id) or super().sender(client_id, data)

    def names(self) -> list[str]:
        return list(self._joined)

    def running(self) -> list[str]:
        # Locust drops a worker from its clients when it quits, dies (missing, then gone) or stops;
        # one that stopped comes back when it is ready again.
        clients = self.runner.clients
        return [
            name
            for name, client_id in self._joined.items()
            if client_id in self._stopped or (client_id in clients and clients[client_id].state != STATE_MISSING)
        ]

    def _all_joined(self) -> bool | None:
        # Every worker Locust counts has its target too: the start hands users to all of them.
        connected = set(self.runner.clients)
        ready = [name for name in self.running() if self._joined[name] in connected]
        return True if len(ready) >= self.joining.count and connected <= set(self._names) else None

    def wait(self) -> None:
        """Returns once ``joining.count`` workers have joined; StartupError after its timeout."""
        joining = self.joining
        try:
            WaitStrategy(f"{joining.count} Locust workers to join", timeout=joining.timeout, interval=0.1).wait(
                self._all_joined
            )
            self.open = False
        except StartupError:
            joined = ", ".join(self._joined) or "none"
            raise StartupError(
                f"{len(self.running())} of {joining.count} Locust workers joined in {joining.timeout:g} s "
                f"(joined: {joined}): run `harness worker --master {joining.master}` on each load host"
            ) from None
