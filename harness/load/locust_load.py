"""Concurrent load with Locust used as a library: an Environment, a local runner, a timer."""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import pandas as pd
from locust import User
from locust.env import Environment
from locust.runners import MasterRunner, Runner

from harness.errors import SpecError
from harness.load.distributed import LostWorker, Workers
from harness.load.grpc_users import make_grpc_user_class
from harness.load.hosts import SimulatedHosts
from harness.load.joined_workers import JoinedWorkers
from harness.load.joining import Joining
from harness.load.records import RequestRecorder
from harness.load.route import FixedRoute, Route
from harness.load.session_users import make_session_user_class
from harness.load.users import make_client_side_user_class, make_user_class
from harness.load.worker_reports import Target, WorkerReports
from harness.load.workload import Workload
from harness.net import LOOPBACK, ClientPopulation, free_port, host_and_port

Progress = Callable[[float, int], None]


@dataclass(frozen=True)
class LoadSettings:
    users: int = 10
    duration: float = 5.0
    spawn_rate: float = 100.0
    path: str = "/api/count"
    method: str = "GET"
    load_workers: int = 0  # 0: users run in this process; K: a Locust master here and K worker processes
    new_connections: bool = False  # a connection per request, for balancers of connections
    population: ClientPopulation | None = None  # the clients users send from; None: a /24 each
    workload: Workload = field(default_factory=Workload)  # short requests, or sessions one after another
    joining: Joining | None = None  # the load comes from workers that join from the user's machines


def user_class_for(route: Route, settings: LoadSettings) -> type[User]:
    """The users of the workload: sessions, gRPC calls or requests, through the balancer or picking themselves."""
    if not isinstance(route, FixedRoute):
        return make_client_side_user_class(route, settings.path, method=settings.method, population=settings.population)
    if settings.workload.has_sessions:
        return make_session_user_class(route, settings.workload, population=settings.population)
    if settings.workload.over_one_connection:
        return make_grpc_user_class(route, settings.workload, population=settings.population, path=settings.path)
    return make_user_class(
        route.url, route.path_for(settings.path), method=settings.method,
        new_connections=settings.new_connections, headers=route.headers,
        ca_file=route.ca_file, population=settings.population,
    )  # fmt: skip


class LocustLoad:
    """Runs ``users`` Locust users through ``route`` for ``duration`` seconds: Locust's own
    FastHttpUser against a balancer's address, or users that pick instances themselves.

    ``run()`` returns one row per request (see ``RequestRecorder``); ``progress`` is called
    about five times a second with the elapsed seconds and the requests so far.
    """

    def __init__(
        self,
        route: Route,
        settings: LoadSettings,
        progress: Progress | None = None,
        log_dir: Path | None = None,
        on_workers: Callable[[list[int]], None] | None = None,
        hosts: SimulatedHosts | None = None,
    ) -> None:
        """``on_workers`` hears the pids of the Locust worker processes as soon as they run;
        ``hosts``: a worker on each of these load hosts instead of ``load_workers`` here."""
        self.route = route
        self.settings = settings
        self.progress = progress
        self.log_dir = log_dir or Path(".")
        self.recorder = RequestRecorder()
        self.request_count = 0
        self.on_workers = on_workers
        self.hosts = hosts
        self.lost: list[LostWorker] = []  # workers that stopped before their last records
        self.joined: dict[str, int] = {}  # the records of each worker that joined the run

    def _workers(self, environment: Environment, route: FixedRoute) -> WorkerReports:
        """A master of ``environment``, with workers the run starts or workers that join it."""
        joining = self.settings.joining
        if joining is None:
            runner = environment.create_master_runner(LOOPBACK, free_port())
            return Workers(runner, self.recorder.rows.extend, self.settings.load_workers, self.log_dir, self.hosts)
        runner = environment.create_master_runner(joining.bind, joining.master_port)
        target_of_workers = Target(
            scheme=urllib.parse.urlsplit(route.url).scheme, port=host_and_port(route.url)[1],
            path=route.path_for(self.settings.path), method=self.settings.method, host_header=route.host,
            ca_pem=route.ca_file.read_text() if route.ca_file is not None else None,
        )  # fmt: skip
        return JoinedWorkers(runner, self.recorder.rows.extend, joining, target_of_workers)

    def _user_class(self) -> type[User]:
        return user_class_for(self.route, self.settings)

    def run(self) -> pd.DataFrame:
        # Locust logs every user spawn at INFO; the harness prints its own progress.
        logging.getLogger("locust").setLevel(logging.WARNING)
        user_class = self._user_class()
        joining = self.settings.joining
        # The master sends its host to the workers, over their own: a load host's is the front's,
        # a joined worker's the address it reached the master at.
        local = self.hosts is None and joining is None
        host = self.route.url if isinstance(self.route, FixedRoute) and local else None
        distributed = bool(self.settings.load_workers) or not local
        environment = Environment(user_classes=[user_class], host=host)
        environment.events.request.add_listener(self.recorder.on_request)  # type: ignore[no-untyped-call]
        workers: WorkerReports | None = None
        runner: Runner
        if distributed:
            if not isinstance(self.route, FixedRoute):
                raise SpecError(
                    "client-side balancing keeps its picking state in one load process: drop --load-workers"
                )
            workers = self._workers(environment, self.route)
            runner = workers.runner
        else:
            runner = environment.create_local_runner()
        try:
            if isinstance(workers, JoinedWorkers):
                workers.wait()
            elif isinstance(workers, Workers):
                assert isinstance(self.route, FixedRoute)
                workers.start(
                    self.route.url, self.route.path_for(self.settings.path), self.settings.method, self.route.host,
                    self.route.ca_file, self.settings.population,
                )  # fmt: skip
                if self.on_workers is not None:
                    self.on_workers(workers.pids)
            started = time.monotonic()
            runner.start(self.settings.users, spawn_rate=self.settings.spawn_rate)
            while (elapsed := time.monotonic() - started) < self.settings.duration:
                if self.progress is not None:
                    self.progress(elapsed, len(self.recorder))
                gevent.sleep(min(0.2, self.settings.duration - elapsed))
            if workers is not None:
                runner.stop()
                workers.flush()
                self.lost = workers.lost(started)
        finally:
            runner.quit()
            if isinstance(runner, MasterRunner):
                # Locust's quit leaves the master's socket open: the next run's master takes its port.
                runner.server.close(linger=0)  # type: ignore[no-untyped-call]
            if isinstance(workers, Workers):
                workers.stop()
        self.joined = workers.records_by_worker() if isinstance(workers, JoinedWorkers) else {}
        self.request_count = int(environment.stats.total.num_requests)
        if self.progress is not None:
            self.progress(self.settings.duration, len(self.recorder))
        return self.recorder.frame()
