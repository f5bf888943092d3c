"""Concurrent load with Locust used as a library: an Environment, a local runner, a timer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import pandas as pd
from locust import User
from locust.env import Environment

from harness.load.records import RequestRecorder
from harness.load.route import FixedRoute, Route
from harness.load.users import make_client_side_user_class, make_user_class

Progress = Callable[[float, int], None]


@dataclass(frozen=True)
class LoadSettings:
    users: int = 10
    duration: float = 5.0
    spawn_rate: float = 100.0
    path: str = "/api/count"
    method: str = "GET"


class LocustLoad:
    """Runs ``users`` Locust users through ``route`` for ``duration`` seconds: Locust's own
    FastHttpUser against a balancer's address, or users that pick instances themselves.

    ``run()`` returns one row per request (see ``RequestRecorder``); ``progress`` is called
    about five times a second with the elapsed seconds and the requests so far.
    """

    def __init__(self, route: Route, settings: LoadSettings, progress: Progress | None = None) -> None:
        self.route = route
        self.settings = settings
        self.progress = progress
        self.recorder = RequestRecorder()
        self.request_count = 0

    def run(self) -> pd.DataFrame:
        # Locust logs every user spawn at INFO; the harness prints its own progress.
        logging.getLogger("locust").setLevel(logging.WARNING)
        user_class: type[User]
        if isinstance(self.route, FixedRoute):
            user_class = make_user_class(self.route.url, self.settings.path, method=self.settings.method)
            environment = Environment(user_classes=[user_class], host=self.route.url)
        else:
            user_class = make_client_side_user_class(self.route, self.settings.path, method=self.settings.method)
            environment = Environment(user_classes=[user_class])
        environment.events.request.add_listener(self.recorder.on_request)  # type: ignore[no-untyped-call]
        runner = environment.create_local_runner()
        started = time.monotonic()
        try:
            runner.start(self.settings.users, spawn_rate=self.settings.spawn_rate)
            while (elapsed := time.monotonic() - started) < self.settings.duration:
                if self.progress is not None:
                    self.progress(elapsed, len(self.recorder))
                gevent.sleep(min(0.2, self.settings.duration - elapsed))
        finally:
            runner.quit()
        self.request_count = int(environment.stats.total.num_requests)
        if self.progress is not None:
            self.progress(self.settings.duration, len(self.recorder))
        return self.recorder.frame()
