"""How a request finds its instance: through a balancer's address, or by the client's own pick.

Server-side balancing gives every request one fixed address (the balancer's). Client-side
balancing picks an instance per request, may try another one when the first fails, and
keeps its own record of the attempts. Load drivers and probes send through a ``Route`` and
do not care which of the two they have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    """Every request to one address: a server-side balancer's."""

    url: str

    @property
    def description(self) -> str:
        return self.url

    def send(self, method: str, path: str, client: str, attempt: Attempt) -> Answer:
        return attempt(self.url)
