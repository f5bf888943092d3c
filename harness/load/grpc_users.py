"""Locust users that call gRPC through a balancer, each turn on one HTTP/2 connection of its own.

Locust has no gRPC user. Each user opens one connection from its own loopback address (as the
request users do), makes unary calls on it for ``hold`` seconds (one each ``every``, or back
to back), closes it and opens the next. Every call is one event on Locust's ``request``
event with the instance from its trailers and the connection it went over in the context,
so the records can say which instances the calls of one connection reached: all of them
behind a balancer of HTTP/2 streams, one behind a balancer of connections.
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
    route: FixedRoute, workload: Workload, first_client: int = 0, population: ClientPopulation | None = None
) -> type[User]:
    """A Locust user class that makes ``workload``'s gRPC calls through ``route``."""
    numbers = itertools.count()  # users are made in one greenlet at a time: no lock needed
    connections = itertools.count(1)
    address = population.address if population is not None else client_address

    class GrpcUser(User):
        wait_time = constant(0)

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            number = next(numbers)
            self.source_address = address(first_client + number)
            self.lengths = workload.lengths(number)

        @task
        def connection(self) -> None:
            hold = self.lengths.next_hold()
            name = f"{self.source_address}#{next(connections)}"
            started = time.perf_counter()
            try:
                connection = connect(route, self.source_address, GRACE_S)
            except OSError as exc:
                self._fire(time.time(), started, None, exc, name)
                gevent.sleep(RETRY_AFTER_S)
                return
            with connection:
                while time.perf_counter() - started < hold:
                    if not self._call(connection, name):
                        return
                    if workload.every > 0:
                        gevent.sleep(workload.every)

        def _call(self, connection: GrpcConnection, name: str) -> bool:
            """One call, fired as an event; False when the connection is lost."""
            wall, clock = time.time(), time.perf_counter()
            try:
                answer = connection.call(UNARY)
            except (OSError, GrpcCallError) as exc:
                self._fire(wall, clock, None, exc, name)
                return False
            error = None if answer.ok else GrpcCallError(answer.describe())
            self._fire(wall, clock, answer, error, name)
            return True

        def _fire(
            self, wall: float, clock: float, answer: GrpcAnswer | None, error: Exception | None, name: str
        ) -> None:
            response = Answer(answer.status, answer.headers) if answer is not None else None
            self.environment.events.request.fire(
                request_type="gRPC", name=UNARY, response_time=(time.perf_counter() - clock) * 1000,
                response_length=sum(len(m) for m in answer.messages) if answer else 0, response=response,
                context={"client": self.source_address, "connection": name}, exception=error,
                start_time=wall, url=UNARY,
            )  # fmt: skip

    return GrpcUser
