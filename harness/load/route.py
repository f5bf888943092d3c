"""How a request finds its instance: through a balancer's address, or by the client's own pick.

Server-side balancing gives every request one fixed address (the balancer's). Client-side
balancing picks an instance per request, may try another one when the first fails, and
keeps its own record of the attempts. Load drivers and probes send through a ``Route`` and
do not care which of the two they have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, whatever client library fetched it."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        """A header's value, whatever case the client library gave its name; empty when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), "")


# One attempt: send the request to ``base_url`` (``http://host:port``) and return its
# answer; raise OSError (refused, reset, timed out) when no answer came.
Attempt = Callable[[str], Answer]


class Route(Protocol):
    @property
    def description(self) -> str:
        """Where requests go, for people: a URL, or the client-side policy."""
        ...

    def send(self, method: str, path: str, client: str, attempt: Attempt) -> Answer:
        """Sends one request through the route; raises what the last attempt raised."""
        ...


@dataclass(frozen=True)
class FixedRoute:
    """Every request to one address: a server-side balancer's.

    A user's config may route on the ``Host`` header and the path (``server_name api.example.com``,
    ``location /api/``): ``host`` is the name requests carry and ``prefix`` the location the
    harness's own paths go under. ``ca_file`` verifies an ``https://`` balancer's certificate.
    ``grpc``: the route speaks gRPC over HTTP/2 (``grpc_pass``, a Service's gRPC port), not HTTP/1.1.
    ``http2``: the route takes plain HTTP over HTTP/2 only (h2c, or h2 by ALPN on an https route).
    """

    url: str
    host: str | None = None
    prefix: str = "/"
    ca_file: Path | None = None
    grpc: bool = False
    http2: bool = False

    @property
    def description(self) -> str:
        where = f"{self.url} (Host: {self.host})" if self.host else self.url
        where = f"{where}, gRPC" if self.grpc else f"{where}, HTTP/2" if self.http2 else where
        return where if self.prefix == "/" else f"{where} under {self.prefix}"

    @property
    def headers(self) -> dict[str, str]:
        """Headers every request on this route carries."""
        return {"Host": self.host} if self.host else {}

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    def path_for(self, path: str) -> str:
        """The harness's ``path`` (``/api/count``) as sent on this route: under its location.

        A location ``/`` or one ``path`` already lies under (``/api/``) takes it as it is;
        ``/app`` takes ``/app/api/count``, which the instances answer all the same.
        """
        if path.startswith(self.prefix) or self.prefix in {"", "/"}:
            return path
        return self.prefix.rstrip("/") + path

    def send(self, method: str, path: str, client: str, attempt: Attempt) -> Answer:
        return attempt(self.url)
