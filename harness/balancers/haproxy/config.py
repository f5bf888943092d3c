"""What a user's HAProxy config means for a run: its frontends and binds, its backends, the
backend under test and the route the load takes to it, and what its servers claim.

As with nginx, a ``server`` line names a service (``server api-gateway api-gateway:3000
check``) and the harness expands it into one server per instance, keeping every
parameter. A config with several backends has one under test (``--backend NAME``, else the
one ``/`` reaches on the first frontend); the services of the others get one instance each,
so that their routes answer too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.balancers.base import Peer, ServerClaims
from harness.balancers.haproxy.files import referenced_files
from harness.balancers.haproxy.health import active_checks_of
from harness.balancers.haproxy.parse import (
    Section,
    Server,
    origin_of,
    parse_server,
    read_sections,
    server_lines,
)
from harness.balancers.haproxy.routing import Request, Switching, switching_of
from harness.balancers.origin import Origin
from harness.checks.health_models import ActiveChecks
from harness.errors import ConfigError

# Binds on something other than an IP address and port: nothing the load can reach on loopback.
_SOCKET_PREFIXES = ("unix@", "abns@", "fd@", "sockpair@", "/", "quic4@", "quic6@", "udp@", "udp4@", "udp6@")
# The harness's paths the route must carry to the backend, under the route's prefix.
_PROBED_PATHS = ("/api/count", "/api/slow", "/api/health", "/api/key-k0/count")


@dataclass(frozen=True)
class Bind:
    """One ``bind`` line of a frontend: where it listens, as written, and its options."""

    frontend: str
    address: str
    params: tuple[str, ...]
    origin: Origin | None

    @property
    def key(self) -> str:
        """The frontend and the port; each key gets one loopback socket of its own."""
        first = self.address.split(",")[0]
        for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
            first = first.removeprefix(prefix)
        return f"{self.frontend} :{first.rpartition(':')[2] or first}"

    @property
    def ssl(self) -> bool:
        return "ssl" in self.params

    def param(self, name: str) -> str | None:
        """The value after ``name`` on the line (``proto h2``: "h2"); None when the line has no ``name``."""
        if name not in self.params:
            return None
        index = self.params.index(name)
        return self.params[index + 1] if index + 1 < len(self.params) else ""

    @property
    def on_a_socket_file(self) -> bool:
        return self.address.startswith(_SOCKET_PREFIXES)


@dataclass(frozen=True)
class HaproxyRoute:
    """A request the harness can send so that a frontend passes it to a backend."""

    frontend: str
    bind: Bind
    request: Request
    backend: str
    origin: Origin | None  # the use_backend or default_backend line that decides it
    prefix: str = "/"  # where the harness's own paths go so that they reach the same backend
    assumed: tuple[str, ...] = ()  # rules the harness could not evaluate, taken as not matching

    def describe(self) -> str:
        host = self.request.host or "(any host)"
        under = f", the load under {self.prefix}" if self.prefix != self.request.path else ""
        return f"{host}{self.request.path} on {self.bind.key} -> {self.backend} ({self.origin}{under})"


@dataclass
class HaproxyConfig:
    path: Path
    sections: list[Section]
    balancer: str = "haproxy"
    routes: list[HaproxyRoute] = field(default_factory=list)
    chosen_backend: str | None = None
    chosen_route: HaproxyRoute | None = None
    files: dict[str, str] = field(default_factory=dict)  # a file as the config names it -> where it is here

    # -- the config's parts --------------------------------------------------------------

    def backends(self) -> list[Section]:
        """Sections that hold servers, in config order."""
        return [s for s in self.sections if s.kind in {"backend", "listen"} and server_lines(s)]

    def frontends(self) -> list[Section]:
        """Sections that listen, in config order, a stats page's last: the site's routes come first."""
        listening = [s for s in self.sections if s.kind in {"frontend", "listen"} and s.first("bind") is not None]
        return sorted(listening, key=lambda s: s.has("stats", "enable") or s.first("stats") is not None)

    def binds(self) -> list[Bind]:
        return [
            Bind(section.name, line[1], tuple(line[2:]), origin_of(line))
            for section in self.frontends()
            for line in section.all("bind")
            if len(line) > 1
        ]

    def servers(self) -> list[Server]:
        return [parse_server(line) for backend in self.backends() for line in server_lines(backend)]

    def defaults_for(self, section: Section) -> Section | None:
        """The ``defaults`` section in effect for ``section``: the last one before it."""
        found = None
        for candidate in self.sections:
            if candidate is section:
                return found
            if candidate.kind == "defaults":
                found = candidate
        return found

    def mode_of(self, section: Section) -> str:
        """``http`` or ``tcp``: the section's own ``mode``, else its defaults', else HAProxy's (tcp);
        a config without a defaults section runs in http mode here (the harness adds one)."""
        for source in (section, self.defaults_for(section)):
            line = source.first("mode") if source is not None else None
            if line is not None and len(line) > 1:
                return line[1]
        return "tcp" if any(s.kind == "defaults" for s in self.sections) else "http"

    def switching(self, section: Section) -> Switching:
        return switching_of(section, self.defaults_for(section))

    # -- the group under test ------------------------------------------------------------

    @property
    def route(self) -> HaproxyRoute | None:
        """The route the load takes: the one chosen, else the under-test backend's first."""
        if self.chosen_route is not None:
            return self.chosen_route
        return next((r for r in self.routes if r.backend == self.under_test.name), None)

    @property
    def under_test(self) -> Section:
        name = self.chosen_backend
        if name is None and self.routes:
            name = self.routes[0].backend
        return next((b for b in self.backends() if b.name == name), self.backends()[0])

    def peers_servers(self) -> list[Server]:
        """The server lines of the backend under test."""
        return [parse_server(line) for line in server_lines(self.under_test)]

    def peers(self) -> list[Peer]:
        return [Peer(s.service, s.weight, serves=_role(s) == "primary", role=_role(s)) for s in self.peers_servers()]

    @property
    def services(self) -> list[str]:
        """The services of the backend under test, in config order, each once."""
        return list(dict.fromkeys(server.service for server in self.peers_servers()))

    @property
    def side_services(self) -> list[str]:
        """Services of the other backends only: one instance each, so their routes answer."""
        mine = set(self.services)
        return [s for s in dict.fromkeys(server.service for server in self.servers()) if s not in mine]

    @property
    def socket_services(self) -> list[str]:
        return []

    @property
    def tls_services(self) -> list[str]:
        """Services of the servers HAProxy speaks TLS to (``server app app:443 ssl``)."""
        return list(dict.fromkeys(s.service for s in self.servers() if s.param("ssl") is not None))

    @property
    def http2_services(self) -> list[str]:
        """None: the balancer ends the client's HTTP/2 and speaks HTTP/1.1 (or gRPC) to the instances."""
        return []

    @property
    def grpc_services(self) -> list[str]:
        """Services of the servers HAProxy speaks HTTP/2 to (``server app app:50051 proto h2``): gRPC."""
        return list(dict.fromkeys(s.service for s in self.servers() if s.param("proto") == "h2"))

    @property
    def speaks_grpc(self) -> bool:
        """The backend under test is spoken to in HTTP/2 (``proto h2``): the route carries gRPC."""
        return bool(self.routes or self.chosen_route) and any(s.param("proto") == "h2" for s in self.peers_servers())

    @property
    def speaks_http2(self) -> bool:
        """The route under test's bind speaks HTTP/2 only (``bind :80 proto h2``) and its servers
        HTTP/1.1: HAProxy ends each client stream and passes it as a request of its own."""
        route = self.route
        return route is not None and route.bind.param("proto") == "h2" and not self.speaks_grpc

    @property
    def offers_http2(self) -> bool:
        """The route's bind speaks HTTP/2 only, or offers it by ALPN (``ssl crt ... alpn h2,http/1.1``)."""
        route = self.route
        alpn = (route.bind.param("alpn") or "").split(",") if route is not None else []
        return self.speaks_http2 or (route is not None and route.bind.ssl and "h2" in alpn and not self.speaks_grpc)

    def routed_groups(self) -> list[str]:
        """Every backend some frontend sends requests to, in config order."""
        routed = {route.backend for route in self.routes}
        return [b.name for b in self.backends() if b.name in routed]

    def effective_workers(self, requested: int | None) -> int:
        # HAProxy runs one process whose threads share every counter.
        return 1

    def shares_counts(self) -> bool:
        return True

    # -- what it claims ------------------------------------------------------------------

    def claims(self) -> str:
        """What the backend under test asks for, in one line, with where it is written."""
        backend = self.under_test
        balance = backend.first("balance")
        parts = [
            " ".join(balance) if balance else f"balance roundrobin (HAProxy's default) as {self.inferred_algorithm()}"
        ]
        for server in self.peers_servers():
            flags = [p for p in ("backup", "disabled", "check") if server.param(p) is not None]
            if (maxconn := server.param("maxconn")) is not None:
                flags.append(f"maxconn {maxconn}")
            if server.weight != 1:
                flags.append(f"weight {server.weight}")
            if flags:
                parts.append(f"server {server.name} {' '.join(flags)}")
        route = f" on route {self.route.describe()}" if self.route else ""
        if self.route and self.route.assumed:
            where = ", ".join(rule.split(": ")[0] for rule in self.route.assumed)
            route += f" (taking the rules at {where}, which the harness cannot evaluate, as not matching)"
        return f"claims inferred from backend `{backend.name}` in {backend.origin}: {', '.join(parts)}{route}"

    def server_claims(self) -> ServerClaims:
        """``backup`` and ``disabled`` (HAProxy's down) and ``maxconn`` of the backend under test."""
        servers = self.peers_servers()
        checks = active_checks(self)
        backend = self.under_test
        return ServerClaims(
            where=f"{backend.origin or self.path.name}: {backend.kind} {backend.name}",
            down=tuple(dict.fromkeys(s.service for s in servers if s.param("disabled") is not None)),
            backup=tuple(dict.fromkeys(s.service for s in servers if s.param("backup") is not None)),
            # maxconn queues what is beyond it rather than refusing it: at most N at the server all the same.
            max_conns=tuple((s.service, int(n)) for s in servers if (n := s.param("maxconn")) and int(n) > 0),
            shared_counts=True,
            # Without `check` HAProxy never marks a server down, so a backup never takes over.
            recovery_s=checks.recover_within if checks.enabled else 0.0,
            detect_s=checks.detect_within(unanswered=False) if checks.enabled else 0.0,
        )

    def inferred_algorithm(self) -> str:
        """The algorithm the backend under test asks for, named as ``harness bench --algo`` names it."""
        backend = self.under_test
        balance = (backend.first("balance") or ["balance", "roundrobin"])[1:]
        if balance[:1] == ["leastconn"]:
            return "least_conn"
        if balance[:1] == ["source"]:
            return "ip_hash"
        if balance[:1] == ["random"]:
            return "random"
        if balance[:1] not in (["roundrobin"], ["static-rr"]):
            return f"balance {' '.join(balance)}"  # no algorithm of the harness; bench asks for --algo
        servers = self.peers_servers()
        if len({server.weight for server in servers}) > 1:
            return "weighted"
        if any(server.param("check") is not None for server in servers) or backend.has("option", "httpchk"):
            return "health_checks"
        return "round_robin"


def load_config(path: Path, backend: str | None = None, route: str | None = None) -> HaproxyConfig:
    """Parses a user's HAProxy config; ConfigError names the file and line when it cannot.

    ``backend`` names the backend under test, ``route`` (``HOST/PATH``) the request the load
    sends; by default the backend that ``/`` reaches on the first frontend.
    """
    config = HaproxyConfig(path=path, sections=read_sections(path))
    config.files = referenced_files(config.path, config.sections)
    backends = {b.name for b in config.backends()}
    if not backends:
        raise ConfigError(f"{path} has no backend with a server: nothing for the harness to balance")
    config.routes = _routes(config)
    if backend is not None:
        if backend not in backends:
            raise ConfigError(f"--backend {backend}: {path} has no such backend; it has {', '.join(sorted(backends))}")
        config.chosen_backend = backend
    if route is not None:
        config.chosen_route = _pick_route(config, route, backend)
        config.chosen_backend = config.chosen_route.backend
    elif config.frontends() and not any(config.mode_of(f) == "http" for f in config.frontends()):
        raise ConfigError(
            f"{path}: every frontend is in mode tcp; the harness's load and checks are HTTP: "
            "test a config with an HTTP frontend (mode http)"
        )
    elif config.frontends() and config.route is None:
        under_test = config.under_test
        raise ConfigError(
            f"{under_test.origin}: no frontend of {path.name} sends a request the harness can tell to backend "
            f"{under_test.name}; name the request with --route HOST/PATH"
        )
    return config


def _routes(config: HaproxyConfig) -> list[HaproxyRoute]:
    """Each backend's first route: the request ``/`` on the first bind that reaches it, else one its rules suggest."""
    found: dict[str, HaproxyRoute] = {}
    for section in config.frontends():
        if config.mode_of(section) != "http":
            continue  # the load is HTTP: a tcp frontend is no route of it
        switching = config.switching(section)
        binds = [b for b in config.binds() if b.frontend == section.name and not b.on_a_socket_file]
        candidates = [Request(None, "/"), *(r for b in config.backends() for r in switching.hints(b.name))]
        for candidate in candidates:
            for bind in binds:
                if candidate.tls and not bind.ssl:
                    continue
                routed = _decide(switching, section.name, bind, Request(candidate.host, candidate.path, bind.ssl))
                if routed is not None and routed.backend not in found:
                    found[routed.backend] = routed
    # Routes of `/` first, in the order of the frontends; the sort keeps the order within each kind.
    return sorted(found.values(), key=lambda r: (r.request.host, r.request.path) != (None, "/"))


def _decide(switching: Switching, frontend: str, bind: Bind, request: Request) -> HaproxyRoute | None:
    """The route of ``request``: the backend it reaches, and a prefix under which every harness path does too.

    The harness's own paths (``/api/count``) may match another backend's rule (``path_beg /api/``);
    they then go under ``/lbh/`` below the request's path, which reaches the same backend.
    """
    rule, backend, unknown = switching.decide(request)
    if backend is None:
        return None
    for prefix in (request.path, _under(request.path, "lbh/")):
        reached = {switching.decide(Request(request.host, _sent(prefix, p), request.tls))[1] for p in _PROBED_PATHS}
        if reached == {backend}:
            origin = rule.origin if rule is not None else switching.default_origin
            assumed = tuple(f"{r.origin}: {r.condition.written if r.condition else r.target}" for r in unknown)
            return HaproxyRoute(frontend, bind, request, backend, origin, prefix, assumed)
    return None


def _under(prefix: str, path: str) -> str:
    return prefix.rstrip("/") + "/" + path


def _sent(prefix: str, path: str) -> str:
    """The harness's ``path`` as the load sends it under ``prefix`` (as ``FixedRoute.path_for`` puts it)."""
    return path if path.startswith(prefix) or prefix in {"", "/"} else prefix.rstrip("/") + path


def _pick_route(config: HaproxyConfig, wanted: str, backend: str | None) -> HaproxyRoute:
    """The route ``HOST/PATH`` names: the first bind of a frontend that passes that request to a backend."""
    host, slash, path = wanted.partition("/")
    request_path = slash + path if slash else "/"
    for section in (s for s in config.frontends() if config.mode_of(s) == "http"):
        switching = config.switching(section)
        for bind in (b for b in config.binds() if b.frontend == section.name and not b.on_a_socket_file):
            routed = _decide(switching, section.name, bind, Request(host or None, request_path, bind.ssl))
            if routed is not None and backend in (None, routed.backend):
                return routed
    known = "; ".join(r.describe() for r in config.routes) or "none"
    raise ConfigError(f"--route {wanted}: no frontend of {config.path} passes it to a backend (routes: {known})")


def _role(server: Server) -> str:
    return (
        "down"
        if server.param("disabled") is not None
        else "backup"
        if server.param("backup") is not None
        else "primary"
    )


def active_checks(config: HaproxyConfig) -> ActiveChecks:
    """The check settings of the backend under test's first server: ``defaults``, then the backend,
    then ``default-server``, then the server line."""
    sections = [*[s for s in config.sections if s.kind == "defaults"][-1:], config.under_test]
    return active_checks_of(sections, config.peers_servers()[0])
