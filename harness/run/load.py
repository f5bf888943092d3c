"""The load of a run: Locust's closed model of users, or an open model at a fixed rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from harness.load.distributed import LostWorker
from harness.load.hosts import SimulatedHosts
from harness.load.locust_load import LoadSettings, LocustLoad
from harness.load.open_model import OpenModelLoad, OpenModelSettings
from harness.load.records import COLUMNS, empty_frame
from harness.load.route import Route
from harness.load.session_sampler import COLUMNS as SESSION_COLUMNS
from harness.load.session_sampler import SessionSampler, clients_view
from harness.load.session_users import SESSION_NAMES
from harness.run.context import RunContext
from harness.runtimes.base import Instance


class RunLoad:
    """Drives the run's load on a route and keeps what it has recorded so far (for an interrupted run)."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.model: dict[str, Any] = {}  # closed (Locust users), open (a fixed rate) or wrk's capacity load
        self.records_so_far: Callable[[], pd.DataFrame] = empty_frame
        # Open sessions per instance over the load (a session workload's), and when the load began.
        self.sessions = pd.DataFrame(columns=SESSION_COLUMNS)
        self.started_at = 0.0
        self.hosts: SimulatedHosts | None = None  # the load hosts the load comes from; None: this machine
        self.lost: list[LostWorker] = []  # load hosts (or workers) lost during the load
        self.joined: dict[str, int] = {}  # the records of each worker that joined the run

    def run(
        self,
        route: Route,
        duration: float,
        timings: dict[str, float],
        instances: Callable[[], list[Instance]] | None = None,
    ) -> tuple[pd.DataFrame, int]:
        """The records of every request, and how many requests the load itself counted.

        A session workload's open sessions are read on ``instances()`` (those under test at the
        moment: a scenario changes them) meanwhile, into ``self.sessions`` and ``sessions.csv``.
        """
        workload = self.context.spec.workload
        sampler = None
        if workload.has_sessions and instances is not None:
            sampler = SessionSampler(instances, workload.session_kind).start()
        self.started_at = time.time()
        try:
            return self._run(route, duration, timings)
        finally:
            if sampler is not None:
                self.sessions = sampler.stop()
                self.sessions["clients_open"] = clients_view(self.sessions, self.opened_sessions())
                self.sessions.to_csv(self.context.run_dir / "sessions.csv", index=False)

    def opened_sessions(self) -> pd.DataFrame:
        """One row per session the load opened (its start ``time``, ``instance``), short requests left out."""
        frame = self.records_so_far()
        return frame[frame["name"].isin(SESSION_NAMES)]

    def _run(self, route: Route, duration: float, timings: dict[str, float]) -> tuple[pd.DataFrame, int]:
        context, spec = self.context, self.context.spec
        scenario = context.scenario
        method, path = ("GET", "/api/count") if scenario is None else (scenario.method, scenario.request_path)
        started = time.monotonic()
        if spec.rate is not None:
            context.phase(f"load: {spec.rate:g} requests/s (open model) for {duration:g} s")
            settings = OpenModelSettings(spec.rate, duration, clients=spec.users, path=path, method=method)
            open_load = OpenModelLoad(route, settings)
            self.records_so_far = lambda: pd.DataFrame(open_load.rows, columns=COLUMNS)
            frame = open_load.run()
            self.model = {"model": "open", "rate": spec.rate, "late": open_load.late}
            count = open_load.request_count
        else:
            doing = f", {spec.workload.describe()}" if spec.workload.chosen else ""
            joining = spec.joining
            if joining is not None:
                context.reporter.notice(joining.describe())
            once = f", once {joining.count} workers have joined at {joining.master}" if joining is not None else ""
            context.phase(f"load: {spec.users} users for {duration:g} s{doing}{once}")
            name = context.algorithm.name
            load = LocustLoad(
                route,
                LoadSettings(
                    users=spec.users, duration=duration, spawn_rate=spec.spawn_rate,
                    load_workers=spec.load_workers, path=path, method=method,
                    # A balancer of connections: kept-alive ones would pin each user to one instance.
                    new_connections=context.kind.balances_connections, population=spec.population,
                    workload=spec.workload, joining=spec.joining,
                ),
                progress=lambda elapsed, count: context.reporter.load_progress(name, elapsed, duration, count),
                log_dir=context.run_dir,
                on_workers=lambda pids: context.journal.record("load workers", pids=pids),
                hosts=self.hosts,
            )  # fmt: skip
            self.records_so_far = load.recorder.frame
            frame = load.run()
            self.model = {"model": "closed", "users": spec.users, "load_workers": spec.load_workers}
            if spec.load_hosts:
                self.model["load_hosts"] = spec.load_hosts
            self.joined = load.joined
            if spec.joining is not None:
                self.model["joined_workers"] = load.joined
            self.lost = load.lost
            if self.lost:
                what = "load host" if spec.load_hosts or spec.joining else "load worker"
                self.model[f"lost_{what.replace(' ', '_')}s"] = [lost.name for lost in self.lost]
                for lost in self.lost:
                    context.journal.record(f"{what} lost", name=lost.name, records=lost.records,
                                           last_report_s=lost.last_report_s)  # fmt: skip
            count = load.request_count
        timings["load_s"] = time.monotonic() - started
        context.journal.record("load", requests=len(frame), locust_requests=count, **self.model)
        return frame, count
