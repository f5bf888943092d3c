"""What a user's nginx config means for a run: its upstreams, the one under test, its claims.

A user's config names services in its upstreams (``server api-gateway:3000 weight=3;``),
as it would in docker-compose. Each service becomes instances the harness starts. The
config's servers and locations say how a request reaches an upstream: the harness finds
every (server_name, location) that proxies to one, picks the upstream under test (the one
``/`` of the default server reaches, unless the user names one) and sends its load on
that route. Reading the files is ``parse``'s job, the servers and their routes
``servers``', writing the config nginx runs ``render``'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.balancers.base import Peer, ServerClaims
from harness.balancers.nginx.parse import Directive, Origin, ParsedTree, read_tree, walk
from harness.balancers.nginx.refusals import refuse_what_cannot_run
from harness.balancers.nginx.servers import (
    Route,
    Server,
    http_blocks,
    nginx_location,
    route_rank,
    servers_and_routes,
)
from harness.balancers.nginx.units import nginx_seconds
from harness.errors import ConfigError

_SERVER_FLAG_PARAMS = ("backup", "down")
_CLAIMING_SERVER_PARAMS = ("max_conns", "max_fails", "weight=")
# Upstream directives that choose the algorithm, and the others a claim line shows.
_ALGORITHM_OPTIONS = ("least_conn", "ip_hash", "hash", "random")
_CLAIMING_OPTIONS = (*_ALGORITHM_OPTIONS, "keepalive", "zone")


@dataclass(frozen=True)
class UpstreamServer:
    """One ``server`` line of an upstream, before expansion."""

    service: str
    port: str | None
    params: tuple[str, ...]
    origin: Origin | None = None
    unix_socket: str | None = None  # ``server unix:/run/app.sock``: the socket's path

    def param(self, key: str) -> str | None:
        for param in self.params:
            name, sep, value = param.partition("=")
            if name == key:
                return value if sep else ""
        return None

    @property
    def weight(self) -> int:
        value = self.param("weight")
        return int(value) if value else 1

    @property
    def backup(self) -> bool:
        return self.param("backup") is not None

    @property
    def down(self) -> bool:
        return self.param("down") is not None


@dataclass(frozen=True)
class Upstream:
    name: str
    servers: tuple[UpstreamServer, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    origin: Origin | None = None

    def has(self, directive: str) -> bool:
        return any(name == directive for name, _ in self.options)

    def option(self, directive: str) -> tuple[str, ...] | None:
        return next((args for name, args in self.options if name == directive), None)

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(server.service for server in self.servers))


@dataclass
class NginxConfig:
    """A user's config, parsed; ``tree`` is the main context with every include read in."""

    path: Path
    tree: list[Directive]
    upstreams: list[Upstream] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    notes: list[tuple[Origin, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    balancer: str = "nginx"
    chosen_upstream: str | None = None
    chosen_route: Route | None = None
    split_hosts: frozenset[str] = frozenset()  # hosts whose ports are services of their own

    @property
    def under_test(self) -> Upstream:
        """The upstream the run judges: the one named with --upstream, else the one ``/`` reaches."""
        name = self.chosen_upstream or (self.route.upstream if self.route else self.upstreams[0].name)
        return next(upstream for upstream in self.upstreams if upstream.name == name)

    @property
    def route(self) -> Route | None:
        """The route the load takes to the upstream under test."""
        if self.chosen_route is not None:
            return self.chosen_route
        candidates = [r for r in self.routes if self.chosen_upstream in (None, r.upstream)]
        candidates = [r for r in candidates if r.path_prefix is not None] or candidates
        # The default server's "/" first: it is where a client that names no host lands.
        return min(candidates, key=route_rank, default=None)

    def peers(self) -> list[Peer]:
        return [
            Peer(
                server.service,
                server.weight,
                serves=not (server.backup or server.down),
                role="down" if server.down else "backup" if server.backup else "primary",
            )
            for server in self.under_test.servers
        ]

    def shares_counts(self) -> bool:
        return self.under_test.has("zone")

    @property
    def services(self) -> list[str]:
        """The services of the upstream under test, in config order, each once."""
        return self.under_test.services

    @property
    def tls_services(self) -> list[str]:
        """Services of the upstreams some location passes to over TLS (``proxy_pass https://app``)."""
        return self._services_of({route.upstream for route in self.routes if route.scheme == "https"})

    @property
    def http2_services(self) -> list[str]:
        return []  # nginx ends the client's HTTP/2: the instances are spoken to in HTTP/1.1 or gRPC

    @property
    def grpc_services(self) -> list[str]:
        """Services of the upstreams some location passes gRPC to (``grpc_pass grpc://app``)."""
        return self._services_of({route.upstream for route in self.routes if route.directive == "grpc_pass"})

    @property
    def speaks_http2(self) -> bool:
        return self.route is not None and self.route.takes_http2_only

    @property
    def offers_http2(self) -> bool:
        return self.route is not None and self.route.offers_http2

    def _services_of(self, names: set[str]) -> list[str]:
        return [s for upstream in self.upstreams if upstream.name in names for s in upstream.services]

    @property
    def speaks_grpc(self) -> bool:
        """The route under test passes gRPC: the load calls it over HTTP/2."""
        return self.route is not None and self.route.directive == "grpc_pass"

    @property
    def socket_services(self) -> list[str]:
        """Services the config reaches on a UNIX socket (``server unix:/run/app.sock``)."""
        servers = [server for upstream in self.upstreams for server in upstream.servers]
        return list(dict.fromkeys(server.service for server in servers if server.unix_socket))

    def routed_groups(self) -> list[str]:
        """Every upstream some location passes to, in config order."""
        routed = {route.upstream for route in self.routes}
        return [upstream.name for upstream in self.upstreams if upstream.name in routed]

    @property
    def side_services(self) -> list[str]:
        """Services of the other upstreams: each gets one instance, so their routes answer too."""
        primary = set(self.services)
        seen: dict[str, None] = {}
        for upstream in self.upstreams:
            for service in upstream.services:
                if service not in primary:
                    seen.setdefault(service, None)
        return list(seen)

    @property
    def worker_processes(self) -> str | None:
        for directive in self.tree:
            if directive["directive"] == "worker_processes" and directive["args"]:
                return str(directive["args"][0])
        return None

    def effective_workers(self, requested: int | None) -> int:
        """Worker processes nginx will run: ``requested``, else the config's, else nginx's default 1."""
        if requested is not None:
            return requested
        value = self.worker_processes
        if value is None:
            return 1
        return (os.cpu_count() or 1) if value == "auto" else int(value)

    def inferred_algorithm(self) -> str:
        """The algorithm this config asks nginx for, named as ``harness bench --algo`` names it."""
        upstream = self.under_test
        for option, algorithm in (("least_conn", "least_conn"), ("ip_hash", "ip_hash"), ("hash", "hash")):
            if upstream.has(option):
                return algorithm
        if upstream.has("random"):
            return "random"
        if len({server.weight for server in upstream.servers}) > 1:
            return "weighted"
        if any(server.param("max_fails") is not None or server.param("fail_timeout") for server in upstream.servers):
            return "health_checks"
        return "round_robin"

    def server_claims(self) -> ServerClaims:
        return _server_claims(self)

    def claims(self) -> str:
        """What the upstream under test asks for, in one line, with where it is written."""
        upstream = self.under_test
        written = [" ".join((name, *args)) for name, args in upstream.options if name in _CLAIMING_OPTIONS]
        parts = (
            written
            if any(name in _ALGORITHM_OPTIONS for name, _ in upstream.options)
            else [self.inferred_algorithm(), *written]
        )
        for server in upstream.servers:
            flags = [p for p in server.params if p in _SERVER_FLAG_PARAMS or p.startswith(_CLAIMING_SERVER_PARAMS)]
            if flags:
                parts.append(f"server {server.service} {' '.join(flags)}")
        route = f" on route {self.route.describe()}" if self.route else ""
        return f"claims inferred from upstream `{upstream.name}` in {upstream.origin}: {', '.join(parts)}{route}"


def _server_claims(config: NginxConfig) -> ServerClaims:
    upstream = config.under_test
    servers = upstream.servers
    hash_args = upstream.option("hash")
    return ServerClaims(
        where=str(upstream.origin),
        down=tuple(dict.fromkeys(s.service for s in servers if s.down)),
        backup=tuple(dict.fromkeys(s.service for s in servers if s.backup)),
        primary_services=tuple(dict.fromkeys(s.service for s in servers if not (s.backup or s.down))),
        # max_conns=0, nginx's default, is no limit.
        max_conns=tuple((s.service, int(n)) for s in servers if (n := s.param("max_conns")) and int(n) > 0),
        hash_key=hash_args[0] if hash_args else None,
        consistent=bool(hash_args and "consistent" in hash_args[1:]),
        shared_counts=upstream.has("zone"),
        # random two least_conn: of two picks, the one with fewer connections, so never the busy one.
        avoids_busy=bool((random := upstream.option("random")) and "least_conn" in random),
        keepalive=int(keepalive[0]) if (keepalive := upstream.option("keepalive")) else None,
        recovery_s=max((_fail_timeout(s) for s in servers if not (s.backup or s.down)), default=10.0),
    )


def _fail_timeout(server: UpstreamServer) -> float:
    value = server.param("fail_timeout")
    return nginx_seconds(value) if value else 10.0


def load_config(path: Path, upstream: str | None = None, route: str | None = None) -> NginxConfig:
    """Parses a user's config (a whole nginx.conf or an http-level fragment) and its includes.

    ``upstream`` names the upstream under test, ``route`` (``HOST/PATH``) the route the load
    takes; by default the route of ``/`` on the default server. Raises ConfigError naming the
    user's file and line when the config cannot run here, and saying what to change.
    """
    parsed: ParsedTree = read_tree(path)
    tree = _as_main_context(parsed.tree)
    split = _hosts_on_several_ports(tree)
    upstreams = list(_upstreams(tree, split))
    config = NginxConfig(
        path=path,
        tree=tree,
        upstreams=upstreams,
        servers=[],
        notes=list(parsed.notes),
        files=parsed.files,
        split_hosts=split,
    )
    if not upstreams:
        raise ConfigError(f"{path} has no upstream block: nothing for the harness to balance")
    if not any(u.servers for u in upstreams):
        raise ConfigError(f"{path}: its upstreams name no server")
    refuse_what_cannot_run(tree)
    names = {u.name for u in upstreams}
    config.servers, config.routes = servers_and_routes(tree, names)
    if upstream is not None:
        if upstream not in names:
            raise ConfigError(f"--upstream {upstream}: {path} has no such upstream; it has {', '.join(sorted(names))}")
        config.chosen_upstream = upstream
    if route is not None:
        config.chosen_route = _pick_route(config, route)
        config.chosen_upstream = config.chosen_route.upstream
    if config.route is None and len(upstreams) > 1 and upstream is None:
        raise ConfigError(
            f"{path}: no location passes to any of its upstreams ({', '.join(sorted(names))}): "
            "add a location with proxy_pass, or name the upstream with --upstream"
        )
    if not config.under_test.servers:
        raise ConfigError(f"{config.under_test.origin}: upstream {config.under_test.name} names no server")
    return config


def _pick_route(config: NginxConfig, wanted: str) -> Route:
    """The route ``HOST/PATH`` names: a server with that name, the location nginx would choose for PATH."""
    host, slash, path = wanted.partition("/")
    path = slash + path if slash else "/"
    best: Route | None = None
    for server in config.servers:
        if host and host not in server.names and host != server.host:
            continue
        chosen = nginx_location(path, list(server.locations))
        best = next(
            (
                route
                for route in config.routes
                if route.server is server
                and chosen is not None
                and ((route.modifier, route.location) == chosen or route.reached_from == chosen[1])
            ),
            None,
        )
        if best is not None:
            break
    if best is None:
        known = "; ".join(r.describe() for r in config.routes) or "none"
        raise ConfigError(f"--route {wanted}: no location of {config.path} passes it to an upstream (routes: {known})")
    return best


def _as_main_context(parsed: list[Directive]) -> list[Directive]:
    """Wraps an http-level fragment (upstream + server blocks, as in conf.d) into a whole config."""
    names = {directive["directive"] for directive in parsed}
    if "http" in names:
        tree = list(parsed)
    else:
        main_level = {"worker_processes", "events", "worker_rlimit_nofile", "user", "pid", "error_log", "load_module"}
        main = [d for d in parsed if d["directive"] in main_level]
        http = [d for d in parsed if d not in main]
        tree = [*main, {"directive": "http", "args": [], "block": http, "origin": None}]
    if not any(directive["directive"] == "events" for directive in tree):
        tree.insert(0, {"directive": "events", "args": [], "block": [], "origin": None})
    return tree


def _hosts_on_several_ports(tree: list[Directive]) -> frozenset[str]:
    """Hosts named with several ports (``127.0.0.1:8001``, ``:8002``): each host:port is a service of its own."""
    ports: dict[str, set[str]] = {}
    for directive in walk(http_blocks(tree)):
        if directive["directive"] == "upstream":
            for inner in directive.get("block", []):
                if inner["directive"] == "server" and inner["args"]:
                    server = upstream_server(inner["args"])
                    ports.setdefault(server.service, set()).add(server.port or "")
    return frozenset(host for host, seen in ports.items() if len(seen) > 1)


def _upstreams(tree: list[Directive], split: frozenset[str]) -> Iterable[Upstream]:
    for directive in walk(http_blocks(tree)):
        if directive["directive"] != "upstream":
            continue
        servers, options = [], []
        for inner in directive.get("block", []):
            if inner["directive"] == "server":
                servers.append(upstream_server(inner["args"], inner.get("origin"), split))
            else:
                options.append((inner["directive"], tuple(inner["args"])))
        yield Upstream(
            name=directive["args"][0], servers=tuple(servers), options=tuple(options), origin=directive.get("origin")
        )


def upstream_server(
    args: list[str] | tuple[str, ...], where: Origin | None = None, split: frozenset[str] = frozenset()
) -> UpstreamServer:
    """One upstream ``server`` line; a host in ``split`` is one service per port (``127.0.0.1-8001``)."""
    address, *params = args
    if address.startswith("unix:"):
        socket = address.removeprefix("unix:")  # its file name is the service's: /run/app.sock serves "app"
        return UpstreamServer(Path(socket).stem or "app", None, tuple(params), where, unix_socket=socket)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or host.endswith(":"):
        host, port = address, ""
    service = f"{host}-{port}" if host in split and port else host
    return UpstreamServer(service=service, port=port or None, params=tuple(params), origin=where)
