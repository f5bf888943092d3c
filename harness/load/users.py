"""Locust users that each send from their own loopback source address.

nginx's ip_hash keys on the client address, so a run with one address would be one
client however many users it has. Each user binds its connections to its own address
(see ``net.client_address``) and reports it as the request's ``client``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any, cast

from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.connectionpool import ConnectionPool
from locust import FastHttpUser, constant, task

from harness.net import client_address


class _SourceBoundConnectionPool(ConnectionPool):
    source_address: str

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> Any:
        sock = super()._create_tcp_socket(family, socktype, protocol)
        sock.bind((self.source_address, 0))
        return sock


class SourceBoundClientPool(HTTPClientPool):
    """A geventhttpclient pool whose connections all leave from ``source_address``."""

    def __init__(self, source_address: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_address = source_address

    def get_client(self, url: Any) -> HTTPClient:
        client = super().get_client(url)
        pool = client._connection_pool
        if not isinstance(pool, _SourceBoundConnectionPool):
            # HTTPClient builds its pool itself and offers no factory; the pool documents
            # _create_tcp_socket as the place to customise sockets, so the pool is given
            # that subclass (same state, one method more).
            pool.__class__ = _SourceBoundConnectionPool
            cast(_SourceBoundConnectionPool, pool).source_address = self.source_address
        return client


class _AddressBook:
    """Hands out client addresses in order, thread- and greenlet-safe."""

    def __init__(self, start: int = 0) -> None:
        self._indices: Iterator[int] = itertools.count(start)
        self._lock = threading.Lock()

    def next_address(self) -> str:
        with self._lock:
            return client_address(next(self._indices))


def make_user_class(
    host: str | None, path: str = "/api/count", first_client: int = 0, method: str = "GET"
) -> type[FastHttpUser]:
    """A FastHttpUser class that sends ``method path`` to ``host`` in a loop, one address per user.

    ``host`` None leaves it to Locust's ``--host`` (the locustfile's case).
    """
    addresses = _AddressBook(first_client)

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
            )
            super().__init__(environment)

        def context(self) -> dict[str, Any]:
            return {"client": self.source_address}

        @task
        def request(self) -> None:
            self.client.request(method, path, name=f"{method} {path}" if method != "GET" else path)

    BalancerClient.host = host
    return BalancerClient
