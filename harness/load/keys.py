"""Requests that carry a chosen value of a balancer's hash key.

``hash $request_uri``, ``hash $arg_user``, ``hash $http_x_tenant``, ``hash $cookie_session``,
``hash $remote_addr``: to see where a key goes, the harness sends requests whose key it
chooses, one variable at a time, and keeps the rest of the request the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.net import client_address

_VARIABLE = re.compile(r"\$\{?([A-Za-z0-9_]+)\}?")
_PATH_VARIABLES = {"request_uri", "uri", "document_uri", "args", "query_string", "is_args", "request"}
_CLIENT_VARIABLES = {"remote_addr", "binary_remote_addr", "realip_remote_addr"}


@dataclass(frozen=True)
class KeyedRequest:
    """One request of a key probe: path (the harness's own, before the route's prefix), headers, source."""

    key: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True)
class KeyPlan:
    """How requests vary a key: which of its variables the harness sets, and which it cannot."""

    key: str
    varies: tuple[str, ...]
    fixed: tuple[str, ...]  # variables the harness cannot choose ($host routes the request itself)

    @property
    def follows_client(self) -> bool:
        """Whether the key is the client's address, so one key cannot come from several clients."""
        return any(name in _CLIENT_VARIABLES for name in self.varies)

    def request(self, index: int, client: int) -> KeyedRequest:
        """Request number ``client`` for key number ``index``."""
        value = f"k{index}"
        path, query, headers = f"/api/key-{value}/count", [], {}
        source = client_address(1000 + index) if self.follows_client else client_address(2000 + client)
        for name in self.varies:
            if name.startswith("arg_"):
                query.append(f"{name.removeprefix('arg_')}={value}")
            elif name in _PATH_VARIABLES:
                query.append(f"key={value}")
            elif name.startswith("http_"):
                headers[name.removeprefix("http_").replace("_", "-")] = value
            elif name.startswith("cookie_"):
                cookie = f"{name.removeprefix('cookie_')}={value}"
                headers["Cookie"] = f"{headers['Cookie']}; {cookie}" if "Cookie" in headers else cookie
        if query:
            path += "?" + "&".join(dict.fromkeys(query))
        return KeyedRequest(key=value, path=path, headers=headers, source=source)


def key_plan(key: str) -> KeyPlan:
    """What the harness varies for ``key`` (``$request_uri``, ``$arg_id$http_x_user``...)."""
    names = _VARIABLE.findall(key)
    settable = [
        name
        for name in names
        if name in _PATH_VARIABLES
        or name in _CLIENT_VARIABLES
        or (name.startswith(("arg_", "http_", "cookie_")) and name not in {"http_host"})
    ]
    return KeyPlan(key=key, varies=tuple(settable), fixed=tuple(name for name in names if name not in settable))
