"""Locust users that call gRPC (or send plain GETs over HTTP/2) through a balancer, each turn on
one HTTP/2 connection of its own.

Locust has no gRPC or HTTP/2 user. Each user opens one connection from its own loopback address (as the
request users do), makes unary calls on it for ``hold`` seconds (one each ``every``, or back
to back), closes it and opens the next. Every call is one event on Locust's ``request``
event with the instance from its trailers and the connection it went over in the context,
so the records can say which instances the calls of one connection reached: all of them
behind a balancer of HTTP/2 streams, one behind a balancer of connections. The http2 workload's
users do the same with GETs of the route's path instead of calls.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import gevent
from locust import User, constant, task

from harness.load.grpc_client import UNARY, GrpcAnswer, GrpcCallError, GrpcConnection, connect
from harness.load.route import Answer, FixedRoute
from harness.load.session_users import GRACE_S
from harness.load.workload import Workload
from harness.net import ClientPopulation, client_address

RETRY_AFTER_S = 0.1  # a connection refused is tried again this much later, not in a tight loop


def make_grpc_user_class(
    route: FixedRoute,
    workload: Workload,
    first_client: int = 0,
    population: ClientPopulation | None = None,
    path: str = "/api/count",
) -> type[User]:
    """A Locust user class that makes ``workload``'s gRPC calls (or HTTP/2 GETs of ``path``) through ``route``."""
    sent = route.path_for(path)
    attributes = {
        "route": route, "workload": workload, "first_client": first_client,
        "address": staticmethod(population.address if population is not None else client_address),
        "numbers": itertools.count(),  # users are made in one greenlet at a time: no lock needed
        "connections": itertools.count(1),
        "request_type": "HTTP/2" if workload.is_http2 else "gRPC",
        "request_name": sent if workload.is_http2 else UNARY,
    }  # fmt: skip
    return type("GrpcUser", (_ConnectionUser,), attributes)


class _ConnectionUser(User):
    """Holds one HTTP/2 connection a turn and sends on it; ``make_grpc_user_class`` fills in the class attributes."""

    abstract = True
    wait_time = constant(0)
    route: FixedRoute
    workload: Workload
    first_client: int
    address: Any  # index -> source address
    numbers: itertools.count[int]
    connections: itertools.count[int]
    request_type: str
    request_name: str

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        number = next(self.numbers)
        self.source_address = self.address(self.first_client + number)
        self.lengths = self.workload.lengths(number)

    @task
    def connection(self) -> None:
        hold = self.lengths.next_hold()
        name = f"{self.source_address}#{next(self.connections)}"
        started = time.perf_counter()
        try:
            connection = connect(self.route, self.source_address, GRACE_S)
        except OSError as exc:
            self._fire(time.time(), started, None, exc, name)
            gevent.sleep(RETRY_AFTER_S)
            return
        with connection:
            while time.perf_counter() - started < hold:
                if not self._call(connection, name):
                    return
                if self.workload.every > 0:
                    gevent.sleep(self.workload.every)

    def _send(self, connection: GrpcConnection) -> GrpcAnswer:
        if self.workload.is_http2:
            return connection.get(self.request_name)
        return connection.call(UNARY)

    def _call(self, connection: GrpcConnection, name: str) -> bool:
        """One call, fired as an event; False when the connection is lost."""
        wall, clock = time.time(), time.perf_counter()
        try:
            answer = self._send(connection)
        except (OSError, GrpcCallError) as exc:
            self._fire(wall, clock, None, exc, name)
            return False
        error = None if answer.ok else GrpcCallError(answer.describe())
        self._fire(wall, clock, answer, error, name)
        return True

    def _fire(self, wall: float, clock: float, answer: GrpcAnswer | None, error: Exception | None, name: str) -> None:
        response = Answer(answer.status, answer.headers) if answer is not None else None
        self.environment.events.request.fire(
            request_type=self.request_type, name=self.request_name,
            response_time=(time.perf_counter() - clock) * 1000,
            response_length=sum(len(m) for m in answer.messages) if answer else 0, response=response,
            context={"client": self.source_address, "connection": name}, exception=error,
            start_time=wall, url=self.request_name,
        )  # fmt: skip
