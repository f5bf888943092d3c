"""The servers of a user's nginx config as a run sees them: their listens, their names, and
their routes, each (server, location) that passes requests to an upstream, with the path
the harness's load takes so that nginx picks that location for it (``nginx_location`` picks a
location the way ``ngx_http_core_find_location`` does)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from harness.balancers.nginx.parse import Directive, Origin, origin, walk
from harness.errors import ConfigError

# These pass to application servers speaking their own protocols, which the instances do not.
FOREIGN_PASS_DIRECTIVES = ("fastcgi_pass", "uwsgi_pass", "scgi_pass", "memcached_pass")


def http_blocks(tree: list[Directive]) -> list[Directive]:
    """The http blocks: upstreams and servers of ``stream`` are TCP balancing, which runs no HTTP load."""
    return [d for d in tree if d["directive"] == "http"]


# Directives that send a request to an upstream, and the scheme each puts before its name.
PASS_DIRECTIVES = {"proxy_pass": ("http://", "https://"), "grpc_pass": ("grpc://", "grpcs://")}


@dataclass(frozen=True)
class Listen:
    """One ``listen`` of a server, as the user wrote it."""

    host: str  # "" for a wildcard (``80``, ``*:80``, ``[::]:80``, ``0.0.0.0:80``)
    port: int
    params: tuple[str, ...]
    origin: Origin | None = None
    ipv6: bool = False
    unix: str | None = None

    @property
    def key(self) -> str:
        """Listens with one key share one loopback socket in the run: an IPv4/IPv6 pair on one port does."""
        if self.unix is not None:
            return f"unix:{self.unix}"
        return f"{self.host}:{self.port}" if self.host else str(self.port)

    @property
    def ssl(self) -> bool:
        return "ssl" in self.params

    @property
    def default_server(self) -> bool:
        return "default_server" in self.params or "default" in self.params


@dataclass(frozen=True)
class Server:
    names: tuple[str, ...]
    listens: tuple[Listen, ...]
    origin: Origin | None = None
    redirects_only: bool = False  # a server that answers ``return 301 ...`` and proxies nothing
    redirect: tuple[int, str, Origin | None] | None = None  # its ``return`` code and URL, with where
    locations: tuple[tuple[str, str], ...] = ()  # (modifier, path) of every location, nested ones too
    ssl_on: bool = False  # the old ``ssl on;``: every listen of the server speaks TLS

    @property
    def host(self) -> str | None:
        """A name a client can send as ``Host`` to reach this server (``.example.com`` and
        ``*.example.com`` as ``example.com`` and ``www.example.com``); None for ``_`` or regexes only."""
        for name in self.names:
            if not name or name in {"_", '""'} or name.startswith("~"):
                continue
            if name.startswith("."):
                return name[1:]
            if name.startswith("*."):
                return "www" + name[1:]
            if name.endswith(".*"):
                return name[:-1] + "com"
            return name
        return None

    @property
    def ssl(self) -> bool:
        """Whether the server's first listen speaks TLS."""
        return self.ssl_on or bool(self.listens and self.listens[0].ssl)


@dataclass(frozen=True)
class Route:
    """A location of a server that passes requests to an upstream."""

    server: Server
    location: str  # the location's path or pattern, as written
    modifier: str  # "", "=", "^~", "~", "~*" or "@" for a named location
    upstream: str
    directive: str  # proxy_pass, grpc_pass...
    scheme: str  # the pass target's scheme: http, https, grpc, grpcs
    origin: Origin | None = None
    strips_uri: bool = False  # ``proxy_pass http://app/;`` replaces the location's part of the URI
    reached_from: str | None = None  # a named location: the location whose try_files falls back to it
    # Where the harness's own paths go so that nginx picks this location for them (None: unknown).
    load_prefix: str | None = None

    @property
    def offers_http2(self) -> bool:
        """Its server listens for HTTP/2 (``listen 80 http2``, ``listen 443 ssl http2``) and it passes plain HTTP."""
        listens = self.server.listens
        return self.directive != "grpc_pass" and bool(listens) and "http2" in listens[0].params

    @property
    def takes_http2_only(self) -> bool:
        """It offers HTTP/2 without TLS: nginx then speaks HTTP/2 only (prior knowledge); with TLS it
        offers HTTP/2 and HTTP/1.1 by ALPN."""
        return self.offers_http2 and not (self.server.ssl_on or self.server.listens[0].ssl)

    @property
    def path_prefix(self) -> str | None:
        """A path this route receives, as a prefix for the harness's own paths; None when none is known."""
        return self.load_prefix

    @property
    def written_prefix(self) -> str | None:
        """The path the location itself names (for a regex, its literal start)."""
        if self.modifier == "@":
            return self.reached_from
        if self.modifier in {"", "^~", "="}:
            return self.location
        return _regex_literal_prefix(self.location)

    def describe(self) -> str:
        where = f"{self.server.host or '(default)'}{self.written_prefix or self.location}"
        return f"{where} -> {self.upstream} ({self.origin})"


def _regex_literal_prefix(pattern: str) -> str | None:
    """``^/api/v1/`` -> ``/api/v1/``: the literal start of an anchored regex, when it has one."""
    if not pattern.startswith("^/"):
        return None
    literal = re.match(r"\^(/[A-Za-z0-9_\-./]*)", pattern)
    return literal.group(1) if literal else None


def route_rank(route: Route) -> tuple[int, int]:
    """``/`` before other locations, a default_server before the others (min() keeps config order in ties)."""
    is_root = route.modifier in {"", "^~"} and route.location == "/"
    is_default = any(listen.default_server for listen in route.server.listens)
    return (0 if is_root else 1, 0 if is_default else 1)


def parse_listen(args: list[str], where: Origin | None) -> Listen:
    address, *params = args
    if address.startswith("unix:"):
        return Listen(host="", port=0, params=tuple(params), origin=where, unix=address.removeprefix("unix:"))
    ipv6 = address.startswith("[")
    if ipv6:
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":") or "80"
        host = "" if host in {"::", ""} else f"[{host}]"
    elif address.isdigit():
        host, port_text = "", address
    else:
        host, _, port_text = address.partition(":")
        if not port_text:
            host, port_text = address, "80"
        host = "" if host in {"*", "0.0.0.0"} else host
    if not port_text.isdigit():
        raise ConfigError(f"{where}: listen {address}: not an address and port nginx can listen on")
    return Listen(host=host, port=int(port_text), params=tuple(params), origin=where, ipv6=ipv6)


def pass_target(directive: Directive) -> tuple[str | None, str, bool]:
    """(upstream name, scheme, whether the target has a URI part) of a proxy_pass or grpc_pass."""
    if not directive["args"]:
        return None, "", False
    target = directive["args"][0]
    for scheme in PASS_DIRECTIVES.get(directive["directive"], ()):
        if target.startswith(scheme):
            rest = target.removeprefix(scheme)
            name, slash, _ = rest.partition("/")
            return name.split(":")[0], scheme.removesuffix("://"), bool(slash)
    return None, "", False


def servers_and_routes(tree: list[Directive], upstreams: set[str]) -> tuple[list[Server], list[Route]]:
    servers: list[Server] = []
    routes: list[Route] = []
    for http in http_blocks(tree):
        for directive in http.get("block", []):
            if directive["directive"] != "server":
                continue
            block = directive.get("block", [])
            listens = tuple(parse_listen(d["args"], d.get("origin")) for d in block if d["directive"] == "listen")
            names = tuple(a for d in block if d["directive"] == "server_name" for a in d["args"])
            proxies = any(d["directive"] in (*PASS_DIRECTIVES, *FOREIGN_PASS_DIRECTIVES) for d in walk(block))
            redirect = _redirect(block)
            locations = [_location_args(d) for d in walk(block) if d["directive"] == "location" and d["args"]]
            server = Server(
                names=names, listens=listens, origin=directive.get("origin"),
                redirects_only=not proxies and redirect is not None, redirect=redirect,
                locations=tuple(locations),
                ssl_on=any(d["directive"] == "ssl" and d["args"] == ["on"] for d in block),
            )  # fmt: skip
            servers.append(server)
            for route in _routes(server, block, upstreams, named=_named_fallbacks(block)):
                routes.append(replace(route, load_prefix=_load_prefix(route, locations)))
    return servers, routes


# The harness's own paths a route must carry to its location: the load, the probes, readiness.
_HARNESS_PATHS = ("/api/count", "/api/slow", "/api/health", "/api/key-k0/count")


def _location_args(directive: Directive) -> tuple[str, str]:
    args = directive["args"]
    return (args[0], args[1]) if len(args) > 1 else ("@" if args[0].startswith("@") else "", args[0])


def _load_prefix(route: Route, locations: list[tuple[str, str]]) -> str | None:
    """A prefix under which every harness path reaches ``route``'s location, nginx choosing as it does.

    ``location /`` beside ``location /api/`` takes the harness's ``/api/count`` to the latter; the
    route of ``/`` then sends ``/lbh/api/count``, which the instances answer all the same.
    """
    written = route.written_prefix
    if written is None:
        return None
    target = ("", route.reached_from) if route.modifier == "@" else (route.modifier, route.location)
    if target not in locations and route.modifier == "@":
        target = next((loc for loc in locations if loc[1] == route.reached_from), target)
    if route.modifier == "=":
        return written if nginx_location(written, locations) == target else None
    for candidate in (written, written.rstrip("/") + "/lbh/", written.rstrip("/") + "/lb-harness/"):
        paths = [candidate.rstrip("/") + path if not path.startswith(candidate) else path for path in _HARNESS_PATHS]
        if written in {"", "/"} and candidate == written:
            paths = list(_HARNESS_PATHS)
        if all(nginx_location(path, locations) == target for path in paths):
            return candidate
    return None


def nginx_location(path: str, locations: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The location nginx picks for ``path`` (ngx_http_core_find_location's order): an exact match,
    else the longest prefix if it has ``^~``, else the first regex that matches, else the longest prefix."""
    for modifier, location in locations:
        if modifier == "=" and location == path:
            return (modifier, location)
    prefixes = [(m, loc) for m, loc in locations if m in {"", "^~"} and path.startswith(loc)]
    longest = max(prefixes, key=lambda item: len(item[1]), default=None)
    if longest is not None and longest[0] == "^~":
        return longest
    for modifier, location in locations:
        if modifier in {"~", "~*"}:
            try:
                if re.search(location, path, re.IGNORECASE if modifier == "~*" else 0):
                    return (modifier, location)
            except re.error:
                continue  # PCRE syntax Python does not read: nginx may still match it
    return longest


def _redirect(block: list[Directive]) -> tuple[int, str, Origin | None] | None:
    """The server's ``return 301 URL`` (or 302, 303, 307, 308): in the server or in its ``location /``."""
    candidates = [d for d in block if d["directive"] == "return"]
    for directive in block:
        if directive["directive"] == "location" and directive["args"][-1:] == ["/"]:
            candidates += [d for d in directive.get("block", []) if d["directive"] == "return"]
    for directive in candidates:
        args = directive["args"]
        if len(args) == 2 and args[0] in {"301", "302", "303", "307", "308"}:
            return int(args[0]), args[1], directive.get("origin")
    return None


def _named_fallbacks(block: list[Directive]) -> dict[str, str]:
    """Named locations reached through ``try_files ... @name``, with the path of the location that falls back."""
    found: dict[str, str] = {}
    for directive in walk(block):
        if directive["directive"] != "location" or not directive["args"]:
            continue
        path = directive["args"][-1]
        for inner in directive.get("block", []):
            if inner["directive"] == "try_files" and inner["args"] and inner["args"][-1].startswith("@"):
                found.setdefault(inner["args"][-1], path)
    return found


def _routes(server: Server, block: list[Directive], upstreams: set[str], named: dict[str, str]) -> Iterator[Route]:
    for directive in block:
        if directive["directive"] != "location":
            continue
        args = directive["args"]
        modifier, location = (args[0], args[1]) if len(args) > 1 else ("", args[0])
        if location.startswith("@"):
            modifier = "@"
        inner_block = directive.get("block", [])
        for inner in inner_block:
            name = inner["directive"]
            if name in FOREIGN_PASS_DIRECTIVES and inner["args"] and inner["args"][0] in upstreams:
                raise ConfigError(
                    f"{origin(inner)}: {name} {inner['args'][0]}: the instances speak HTTP, not {name.split('_')[0]}; "
                    f"proxy_pass to the upstream instead, or test the HTTP route alone with --route"
                )
            if name not in PASS_DIRECTIVES:
                continue
            upstream, scheme, strips = pass_target(inner)
            if upstream in upstreams:
                yield Route(
                    server=server, location=location, modifier=modifier, upstream=upstream, directive=name,
                    scheme=scheme, origin=inner.get("origin"), strips_uri=strips,
                    reached_from=named.get(location) if modifier == "@" else None,
                )  # fmt: skip
        yield from _routes(server, inner_block, upstreams, named)
