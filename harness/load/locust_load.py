"""Concurrent load with Locust used as a library: an Environment, a local runner, a timer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import pandas as pd
from locust.env import Environment

from harness.load.records import RequestRecorder
from harness.load.users import make_user_class

Progress = Callable[[float, int], None]


@dataclass(frozen=True)
class LoadSettings:
    users: int = 10
    duration: float = 5.0
    spawn_rate: float = 100.0
    path: str = "/api/count"
    method: str = "GET"


class LocustLoad:
    """Runs ``users`` Locust users against ``url`` for ``duration`` seconds.

    ``run()`` returns one row per request (see ``RequestRecorder``); ``progress`` is called
    about five times a second with the elapsed seconds and the requests so far.
    """

    def __init__(self, url: str, settings: LoadSettings, progress: Progress | None = None) -> None:
        self.url = url
        self.settings = settings
        self.progress = progress
        self.recorder = RequestRecorder()
        self.request_count = 0

    def run(self) -> pd.DataFrame:
        # Locust logs every user spawn at INFO; the harness prints its own progress.
        logging.getLogger("locust").setLevel(logging.WARNING)
        user_class = make_user_class(self.url, self.settings.path, method=self.settings.method)
        environment = Environment(user_classes=[user_class], host=self.url)
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
