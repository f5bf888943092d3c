"""A cluster with Locust's web UI in front of it and the Backends console mounted: ``harness ui``.

:class:`ConsoleSession` owns everything it starts: the instances and the balancer, the
Locust runner (and its worker processes with ``load_workers``), and the web UI. ``close()``
rolls back faults injected from the UI, stops Locust and tears the cluster down.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from locust.env import Environment

from harness.console.live import LiveBackends
from harness.console.web import attach
from harness.expectations import expected_shares
from harness.load.distributed import Workers
from harness.load.locust_load import LoadSettings, user_class_for
from harness.load.route import FixedRoute
from harness.net import LOOPBACK, free_port
from harness.plan import Plan, open_cluster
from harness.results.store import Journal


class ConsoleSession:
    def __init__(self, plan: Plan, run_dir: Path, web_host: str = LOOPBACK, web_port: int = 8089) -> None:
        """``plan``: prepared for ``ui``, with its one run."""
        self.spec = plan.spec
        self.algorithm = plan.only.algorithm
        self.config = plan.only.config
        self.run_dir = run_dir
        self.web_host = web_host
        self.web_port = web_port
        self.journal = Journal(run_dir / "journal.jsonl")
        self.cluster = open_cluster(plan, plan.only, run_dir, self.journal)
        self.environment: Environment | None = None
        self.live: LiveBackends | None = None
        self._workers: Workers | None = None
        self._argv: list[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    def start(self) -> ConsoleSession:
        self.cluster.start()
        route = self.cluster.route
        # The workload's users (short requests by default; sessions, gRPC or HTTP/2 with --workload).
        user_class = user_class_for(route, LoadSettings(workload=self.spec.workload))
        environment = Environment(user_classes=[user_class], host=route.url if isinstance(route, FixedRoute) else None)
        self.environment = environment
        expected = expected_shares(
            self.algorithm, self.config, self.cluster.instances, self.cluster.weights_by_instance
        )
        self.live = LiveBackends(self.cluster, expected)
        if self.spec.load_workers:
            runner: Any = environment.create_master_runner(LOOPBACK, free_port())
            self._workers = Workers(runner, self.live.add_records, self.spec.load_workers, self.run_dir)
            assert isinstance(route, FixedRoute)  # the spec refuses workers for client-side balancing
            self._workers.start(route.url, route.path_for("/api/count"), "GET", route.host, route.ca_file)
            self.journal.record("load workers", pids=self._workers.pids)
        else:
            environment.create_local_runner()
        # Locust's UI reads Locust's own options from sys.argv on every page load; the
        # harness's options are not Locust's, so it sees a command line without options.
        self._argv, sys.argv = sys.argv, sys.argv[:1]
        environment.create_web_ui(host=self.web_host, port=self.web_port)
        attach(environment, self.live)
        self.journal.record("web ui", url=self.url)
        return self

    def wait(self) -> None:
        """Blocks until the web UI ends (Ctrl-C, SIGTERM, or Locust's own quit)."""
        assert self.environment is not None and self.environment.web_ui is not None
        greenlet = self.environment.web_ui.greenlet
        assert greenlet is not None
        greenlet.join()

    def close(self) -> None:
        try:
            if self.live is not None:
                self.live.rollback_all()
            if self.environment is not None:
                if self.environment.runner is not None:
                    self.environment.runner.quit()
                if self.environment.web_ui is not None and self.environment.web_ui.server is not None:
                    self.environment.web_ui.stop()  # type: ignore[no-untyped-call]
        finally:
            if self._workers is not None:
                self._workers.stop()
            self.cluster.stop()
            if self._argv is not None:
                sys.argv = self._argv

    def __enter__(self) -> ConsoleSession:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
