"""Locust users that each send from their own loopback source address.

nginx's ip_hash keys on the client address, so a run with one address would be one
client however many users it has. Each user binds its connections to its own address
(see ``net.client_address``) and reports it as the request's ``client``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, cast

from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.connectionpool import ConnectionPool, SSLConnectionPool
from locust import FastHttpUser, User, constant, task

from harness.load.route import Answer, Route
from harness.net import ClientPopulation, client_address, relocated


class _BindsSource:
    """Binds every new socket of a geventhttpclient pool to ``source_address`` before it connects."""

    source_address: str

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> Any:
        sock = super()._create_tcp_socket(family, socktype, protocol)  # type: ignore[misc]
        sock.bind((self.source_address, 0))
        return sock


class _SourceBoundConnectionPool(_BindsSource, ConnectionPool):
    pass


class _SourceBoundSSLConnectionPool(_BindsSource, SSLConnectionPool):
    pass


class SourceBoundClientPool(HTTPClientPool):
    """A geventhttpclient pool whose connections all leave from ``source_address``."""

    def __init__(self, source_address: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_address = source_address

    def get_client(self, url: Any) -> HTTPClient:
        client = super().get_client(url)
        pool = client._connection_pool
        if not isinstance(pool, _BindsSource):
            # HTTPClient builds its pool itself and offers no factory; the pool documents
            # _create_tcp_socket as the place to customise sockets, so the pool is given
            # that subclass (same state, one method more).
            if isinstance(pool, SSLConnectionPool):
                pool.__class__ = _SourceBoundSSLConnectionPool
            else:
                pool.__class__ = _SourceBoundConnectionPool
            cast(_BindsSource, pool).source_address = self.source_address
        return client


class _AddressBook:
    """Hands out client addresses in order, thread- and greenlet-safe."""

    def __init__(
        self,
        start: int = 0,
        population: ClientPopulation | None = None,
        block: IPv4Network | None = None,
        only: str | None = None,
    ) -> None:
        self._indices: Iterator[int] = itertools.count(start)
        self._lock = threading.Lock()
        self._address = population.address if population is not None else client_address
        self._block = block  # a load host's own block of addresses, for the loopback's client range
        self._only = only  # every user sends from this one address (a host of the user's own)

    def next_address(self) -> str:
        if self._only is not None:
            return self._only
        with self._lock:
            address = self._address(next(self._indices))
        return relocated(address, self._block) if self._block is not None else address


def make_user_class(
    host: str | None,
    path: str = "/api/count",
    first_client: int = 0,
    method: str = "GET",
    new_connections: bool = False,
    headers: Mapping[str, str] | None = None,
    ca_file: Path | None = None,
    population: ClientPopulation | None = None,
    client_block: IPv4Network | None = None,
    source_address: str | None = None,
) -> type[FastHttpUser]:
    """A FastHttpUser class that sends ``method path`` to ``host`` in a loop, one address per user.

    ``new_connections``: every request on a connection of its own (``Connection: close``),
    as the seed's curl loops send them; a balancer of connections (kube-proxy) then makes
    one choice per request.

    ``headers`` go with every request (the ``Host`` a user's server_name routes on); ``ca_file``
    verifies an https balancer's certificate. ``population``: users send from its addresses in
    turn (user i from client i, modulo its size) instead of one /24 each. ``client_block``: the
    addresses, at the same offsets, of a load host's own network instead of the loopback's.
    ``source_address``: every user sends from this one address (a host that joined a run as it is).

    ``host`` None leaves it to Locust's ``--host`` (the locustfile's case).
    """
    addresses = _AddressBook(first_client, population, client_block, only=source_address)
    request_headers = {**(headers or {}), **({"Connection": "close"} if new_connections else {})} or None
    tls = {"ssl_options": {"ca_certs": str(ca_file)}} if ca_file is not None else {}

    class BalancerClient(FastHttpUser):
        wait_time = constant(0)

        def __init__(self, environment: Any) -> None:
            self.source_address = addresses.next_address()
            # A pool given to FastHttpUser is used as it is, so it gets the user's timeouts here
            # (geventhttpclient's own default is 5 s, shorter than many proxy timeouts).
            self.client_pool = SourceBoundClientPool(
                self.source_address,
                network_timeout=self.network_timeout,
                connection_timeout=self.connection_timeout,
                concurrency=self.concurrency,
                **tls,
            )
            super().__init__(environment)

        def context(self) -> dict[str, Any]:
            return {"client": self.source_address}

        @task
        def request(self) -> None:
            self.client.request(
                method, path, name=f"{method} {path}" if method != "GET" else path, headers=request_headers
            )

    BalancerClient.host = host
    return BalancerClient


def pooled_request(
    pool: SourceBoundClientPool, base_url: str, method: str, path: str, headers: Mapping[str, str] | None = None
) -> Answer:
    """One request on the pool's kept-alive connection to ``base_url``, read whole."""
    response = pool.get_client(base_url).request(method, path, headers=dict(headers) if headers else None)
    try:
        body = response.read()
    finally:
        response.release()
    return Answer(response.status_code, {key: value for key, value in response.items()}, body)


class StatusError(Exception):
    """An answer with an error status, reported to Locust as a failure as FastHttpUser does."""


def make_client_side_user_class(
    route: Route,
    path: str = "/api/count",
    first_client: int = 0,
    method: str = "GET",
    population: ClientPopulation | None = None,
) -> type[User]:
    """A Locust user that balances on its own: every request goes through ``route``, which
    picks the instance (and the next one, if the first fails); one Locust request event per
    request, whatever the number of attempts, as a caller of a client-side balancer sees it."""
    addresses = _AddressBook(first_client, population)
    name = f"{method} {path}" if method != "GET" else path

    class ClientSideBalancingUser(User):
        wait_time = constant(0)

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            self.source_address = addresses.next_address()
            # One kept-alive connection per instance, as a client-side balancer's subchannels.
            self.pool = SourceBoundClientPool(
                self.source_address,
                connection_timeout=getattr(route, "connect_timeout", 60.0),
                network_timeout=getattr(route, "read_timeout", 60.0),
                concurrency=1,
            )

        def on_stop(self) -> None:
            self.pool.close()

        def _attempt(self, base_url: str) -> Answer:
            return pooled_request(self.pool, base_url, method, path)

        @task
        def request(self) -> None:
            started = time.time()
            clock = time.perf_counter()
            answer: Answer | None = None
            error: Exception | None = None
            try:
                answer = route.send(method, path, self.source_address, self._attempt)
            except OSError as exc:
                error = exc
            if answer is not None and answer.status >= 400:
                error = StatusError(f"HTTP {answer.status}")
            self.environment.events.request.fire(
                request_type=method,
                name=name,
                response_time=(time.perf_counter() - clock) * 1000,
                response_length=len(answer.body) if answer is not None else 0,
                response=answer,
                context={"client": self.source_address},
                exception=error,
                start_time=started,
                url=path,
            )

    return ClientSideBalancingUser
