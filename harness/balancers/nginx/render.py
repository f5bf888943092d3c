"""Writing the config nginx runs from a user's config: services expanded into instances,
every listen on loopback, every path inside the run directory.

Everything rendered differently from what the user wrote is said once, with the user's
file and line, in ``Rendered.rewrites`` (the balancer writes them to ``rewrites.txt``), and
every line of the rendered file knows the user's line it came from, so that nginx's own
complaints can be told in the user's terms.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import crossplane

from harness.backends.instance import by_service as instances_by_service
from harness.balancers.nginx.config import NginxConfig, upstream_server
from harness.balancers.nginx.parse import Directive, Origin, walk, without_origins
from harness.balancers.nginx.servers import PASS_DIRECTIVES, parse_listen
from harness.balancers.tls import RunCertificates
from harness.errors import ConfigError
from harness.runtimes.base import Instance

# Tab-separated so that multi-valued fields ("127.0.1.1:8000, 127.0.1.2:8000") stay whole.
ACCESS_LOG_FORMAT_NAME = "harness_log"
ACCESS_LOG_FIELDS = (
    ("msec", "$msec"),
    ("remote_addr", "$remote_addr"),
    ("method", "$request_method"),
    ("uri", "$request_uri"),
    ("status", "$status"),
    ("upstream_addr", "$upstream_addr"),
    ("upstream_status", "$upstream_status"),
    ("upstream_response_time", "$upstream_response_time"),
    ("request_time", "$request_time"),
    ("pid", "$pid"),
    ("connection", "$connection"),
    # The upstream's hash key as nginx computed it for the request ("-" when it hashes none), so
    # a replay of its picks needs no guess of variables the log does not hold.
    ("hash_key", "-"),
)
_TEMP_PATH_DIRECTIVES = (
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
)
_CACHE_PATH_DIRECTIVES = ("proxy_cache_path", "fastcgi_cache_path", "uwsgi_cache_path", "scgi_cache_path")
# Directives the harness owns: wherever the user put them, they are replaced, and why is said.
_OWNED_DIRECTIVES = {
    "pid": "the run keeps its pid file in the run directory",
    "daemon": "nginx runs in the foreground under the harness",
    "error_log": "the run's error.log takes every level from notice",
    "access_log": "the run's access.log records every request in the harness's format",
    "log_format": "the run's access log has its own format",
    "user": "nginx runs as the user running the harness",
    "lock_file": "the run needs no lock file",
    "load_module": "modules are this machine's nginx's own",
    **{name: "temporary files go to the run directory" for name in _TEMP_PATH_DIRECTIVES},
}
# TLS files the run does not have, and settings that would reach outside loopback (OCSP, DNS).
_DROPPED_TLS = {
    "ssl_trusted_certificate", "ssl_client_certificate", "ssl_dhparam", "ssl_crl", "ssl_stapling",
    "ssl_stapling_verify", "ssl_stapling_file", "ssl_stapling_responder", "ssl_session_ticket_key",
    "ssl_verify_client", "ssl_password_file", "resolver", "resolver_timeout",
}  # fmt: skip
_CERTIFICATE_DIRECTIVES = ("ssl_certificate", "ssl_certificate_key")
# TLS to the upstream: the client certificate nginx would show, and its revocation list and password.
_DROPPED_PROXY_TLS = {"proxy_ssl_certificate", "proxy_ssl_certificate_key", "proxy_ssl_crl", "proxy_ssl_password_file"}
# Listen parameters about the socket itself: nginx takes them once per address and port.
_SOCKET_PARAMS = ("default_server", "default", "backlog=", "rcvbuf=", "sndbuf=", "accept_filter=", "deferred",
                  "bind", "fastopen=", "so_keepalive=", "reuseport", "setfib=")  # fmt: skip
_DROPPED_LISTEN_PARAMS = {
    "quic": "QUIC needs nginx 1.25",
    "http3": "HTTP/3 needs nginx 1.25",
    "proxy_protocol": "clients of the run connect directly, without a PROXY header",
}
# A closed loopback port: a proxy_pass to a host outside the run answers 502 here instead of leaving it.
OUTSIDE_THE_RUN = "127.0.0.1:9"


@dataclass(frozen=True)
class RenderSettings:
    """Where and how the rendered config runs."""

    run_dir: Path
    listen: str  # the address every listen without its own goes to (the route's, in a local run)
    workers: int
    zone: bool = False
    weights: Mapping[str, int] | None = None  # per instance name, overriding the config
    listens: Mapping[str, str] = field(default_factory=dict)  # a user listen's key -> loopback address:port
    certificates: RunCertificates | None = None  # None: ssl listens are served without TLS


@dataclass
class Rendered:
    text: str
    tree: list[Directive]  # the rendered tree, each directive with the user's origin (None for the harness's)
    rewrites: list[tuple[Origin | None, str]] = field(default_factory=list)

    def rewrites_text(self) -> str:
        return "".join(f"{where or 'harness'}: {what}\n" for where, what in self.rewrites)


def render(config: NginxConfig, instances: Sequence[Instance], settings: RenderSettings) -> str:
    """The config nginx runs, as text (see ``render_config``)."""
    return render_config(config, instances, settings).text


def render_config(config: NginxConfig, instances: Sequence[Instance], settings: RenderSettings) -> Rendered:
    """The config nginx runs: services expanded into ``instances``, listens on loopback, paths in the run dir.

    Raises ConfigError when an upstream names a service that has no instance.
    """
    by_service = instances_by_service(instances)
    renderer = _Renderer(config, by_service, settings)
    tree = renderer.block(config.tree, parent="main")
    tree = _main_directives(settings) + [d for d in tree if d["directive"] != "worker_processes"]
    text = str(crossplane.build(without_origins(tree))) + "\n"
    rewrites: list[tuple[Origin | None, str]] = [*config.notes, *renderer.rewrites]
    return Rendered(text=text, tree=tree, rewrites=rewrites)


def listen_keys(config: NginxConfig) -> list[str]:
    """Every distinct listen of the config, in config order (a server without one listens on 80)."""
    keys: dict[str, None] = {}
    for server in config.servers:
        for listen in server.listens or (parse_listen(["80"], server.origin),):
            keys.setdefault(listen.key, None)
    return list(keys)


def plan_listens(config: NginxConfig, primary: str, spare: Callable[[], str]) -> dict[str, str]:
    """Each listen of the config (by key) and its socket in the run: the route's on ``primary``,
    every other on the next ``spare()`` one (a server without a listen listens on 80, as in nginx)."""
    route = config.route
    keys = listen_keys(config)
    if route is not None:
        first = route.server.listens[0].key if route.server.listens else "80"
    else:
        first = keys[0] if keys else "80"
    planned = {first: primary}
    for key in keys:
        if key not in planned:
            planned[key] = spare()
    return planned


def _main_directives(settings: RenderSettings) -> list[Directive]:
    # A master started by root runs its workers as nobody, who cannot enter a run directory of
    # root's own (pytest's tmp is 0700): request bodies written to temp files would fail with 500.
    user = [{"directive": "user", "args": ["root"], "origin": None}] if os.geteuid() == 0 else []
    return [
        *user,
        {"directive": "worker_processes", "args": [str(settings.workers)], "origin": None},
        {"directive": "daemon", "args": ["off"], "origin": None},
        {"directive": "pid", "args": [str(settings.run_dir / "nginx.pid")], "origin": None},
        {"directive": "error_log", "args": [str(settings.run_dir / "error.log"), "notice"], "origin": None},
    ]


def _http_directives(settings: RenderSettings, hash_key: str | None) -> list[Directive]:
    variables = [hash_key or "-" if name == "hash_key" else variable for name, variable in ACCESS_LOG_FIELDS]
    log_format = "\t".join(variables)
    directives: list[Directive] = [
        {"directive": "log_format", "args": [ACCESS_LOG_FORMAT_NAME, log_format], "origin": None},
        # Buffered: one write per 64 KiB instead of one per request (timestamps are taken per
        # request all the same); nginx flushes at least every second and when it stops.
        {
            "directive": "access_log",
            "args": [str(settings.run_dir / "access.log"), ACCESS_LOG_FORMAT_NAME, "buffer=64k", "flush=1s"],
            "origin": None,
        },
    ]
    for name in _TEMP_PATH_DIRECTIVES:
        directives.append({"directive": name, "args": [str(settings.run_dir / "temp" / name)], "origin": None})
    return directives


class _Renderer:
    def __init__(self, config: NginxConfig, by_service: Mapping[str, list[Instance]], settings: RenderSettings):
        self.config = config
        self.by_service = by_service
        self.settings = settings
        self.rewrites: list[tuple[Origin | None, str]] = []
        self.upstream_names = {upstream.name for upstream in config.upstreams}
        self.socket_params_used: dict[str, set[str]] = {}  # loopback socket -> socket-level params given
        self.caches = 0
        self._listened: list[str] = []  # the loopback sockets of the server being rendered
        self._serves_grpc = False  # the server being rendered passes gRPC (its listens keep http2)
        # The CA of the instances that serve TLS (those of `proxy_pass https://` upstreams), when they do.
        self.instance_ca = next((i.tls.ca_file for group in by_service.values() for i in group if i.tls), None)

    def note(self, where: Origin | None, what: str) -> None:
        self.rewrites.append((where, what))

    def block(self, block: Iterable[Directive], parent: str) -> list[Directive]:
        rendered = (self.directive(d, parent) for d in block)
        return [d for d in rendered if d is not None]

    def directive(self, directive: Directive, parent: str) -> Directive | None:
        name = directive["directive"]
        where = directive.get("origin")
        if name in _OWNED_DIRECTIVES:
            shown = directive["args"][:1] if name == "log_format" else directive["args"]
            self.note(where, f"{' '.join([name, *shown])}: dropped, {_OWNED_DIRECTIVES[name]}")
            return None
        if name == "stream" and parent == "main":
            self.note(where, "stream: left out, the harness balances HTTP; its TCP and UDP servers do not run")
            return None
        if name == "ssl" and directive["args"] == ["on"] and self.settings.certificates is None:
            self.note(where, "ssl on: dropped, this run serves the server without TLS")
            return None
        if name in _DROPPED_PROXY_TLS:
            self.note(where, f"{name}: dropped, the instances ask for no client certificate")
            return None
        if name == "proxy_ssl_trusted_certificate":
            if self.instance_ca is None:
                self.note(where, f"{name}: dropped, the instances speak plain HTTP here")
                return None
            self.note(where, f"{name} {' '.join(directive['args'])}: the CA of the instances' certificate")
            return {"directive": name, "args": [self.instance_ca], "origin": where}
        if name in _DROPPED_TLS:
            self.note(where, f"{name}: dropped, the run has its own certificates and reaches nothing outside loopback")
            return None
        directive = {"directive": name, "args": list(directive["args"]), "block": directive.get("block"),
                     "origin": where}  # fmt: skip
        if directive["block"] is None:
            del directive["block"]
        if name == "listen":
            return self.listen(directive)
        if name in _CERTIFICATE_DIRECTIVES:
            return None  # the server's block gets the run's own (see server())
        if name in _CACHE_PATH_DIRECTIVES:
            self.caches += 1
            cache = self.settings.run_dir / "cache" / str(self.caches)
            self.note(where, f"{name} {directive['args'][0]}: moved to {cache}")
            directive["args"][0] = str(cache)
        if name in PASS_DIRECTIVES:
            self.pass_target(directive)
        if "block" not in directive:
            return directive
        if name == "upstream":
            directive["block"] = self.upstream(directive)
            return directive
        if name == "server":
            self._listened = []
            self._serves_grpc = any(d["directive"] == "grpc_pass" for d in walk(directive["block"]))
        block = self.block(directive["block"], parent=name)
        if name == "http":
            block = _http_directives(self.settings, self.config.server_claims().hash_key) + block
        if name == "server":
            block = self.server(directive, block)
        directive["block"] = block
        return directive

    def server(self, directive: Directive, block: list[Directive]) -> list[Directive]:
        if not any(d["directive"] == "listen" for d in block):
            listen = self.listen({"directive": "listen", "args": ["80"], "origin": directive.get("origin")})
            assert listen is not None
            block.insert(0, listen)
        ssl = any(
            (d["directive"] == "listen" and "ssl" in d["args"]) or (d["directive"] == "ssl" and d["args"] == ["on"])
            for d in block
        )
        if ssl and self.settings.certificates is not None:
            names = [a for d in block if d["directive"] == "server_name" for a in d["args"]]
            chain, key = self.settings.certificates.issue(_certificate_names(names))
            written = [d for d in directive["block"] if d["directive"] in _CERTIFICATE_DIRECTIVES]
            for old in written:
                mine = chain if old["directive"] == "ssl_certificate" else key
                self.note(
                    old.get("origin"), f"{old['directive']} {old['args'][0]}: replaced by the run's own ({mine.name})"
                )
            block.insert(0, {"directive": "ssl_certificate", "args": [str(chain)], "origin": None})
            block.insert(1, {"directive": "ssl_certificate_key", "args": [str(key)], "origin": None})
        return block

    def listen(self, directive: Directive) -> Directive | None:
        where = directive.get("origin")
        listen = parse_listen(directive["args"], where)
        socket = self.settings.listens.get(listen.key, self.settings.listen)
        written = " ".join(directive["args"])
        params: list[str] = []
        used = self.socket_params_used.setdefault(socket, set())
        taken: set[str] = set()  # socket options this listen gives, marked used only if it is kept
        without_tls = listen.ssl and self.settings.certificates is None
        for param in listen.params:
            if param in _DROPPED_LISTEN_PARAMS:
                self.note(where, f"listen {written}: {param} dropped, {_DROPPED_LISTEN_PARAMS[param]}")
            elif param.startswith("ipv6only="):
                continue  # one loopback socket serves both sides of an IPv4/IPv6 pair
            elif param == "http2" and without_tls and self._serves_grpc:
                params.append(param)  # gRPC without TLS is HTTP/2 with prior knowledge (h2c): the load speaks it
            elif param in {"ssl", "http2"} and without_tls:
                # http2 without TLS would make the socket speak only HTTP/2 (h2c), which the load does not.
                self.note(where, f"listen {written}: {param} dropped, this run serves the server without TLS")
            elif param.startswith(_SOCKET_PARAMS):
                key = param.partition("=")[0]
                if key not in used:
                    taken.add(key)
                    params.append(param)
            else:
                params.append(param)
        # A second listen of this server on the same loopback socket (the [::]:80 of a pair) is one listen here.
        if self._server_has(socket):
            self.note(where, f"listen {written}: served by the same {socket} as the server's first listen")
            return None
        self._listened.append(socket)
        used.update(taken)
        if written != " ".join([socket, *params]):
            self.note(where, f"listen {written}: on {socket}")
        return {"directive": "listen", "args": [socket, *params], "origin": where}

    def _server_has(self, socket: str) -> bool:
        return socket in self._listened

    def pass_target(self, directive: Directive) -> None:
        target = directive["args"][0] if directive["args"] else ""
        scheme, sep, rest = target.partition("://")
        # A variable in the host is resolved per request (through the upstream names, or a resolver
        # the run drops); a variable after a literal host and port still connects to that host.
        authority = rest.split("/")[0].split("$")[0]
        host_is_whole = ":" in authority or rest[len(authority) : len(authority) + 1] in {"", "/"}
        if not sep or not authority or not host_is_whole:
            return
        host = authority.split(":")[0]
        if host in self.upstream_names and scheme == "https":
            if self._serve_tls(host):
                self.note(directive.get("origin"), f"proxy_pass {target}: kept, the instances serve TLS")
                return
            directive["args"][0] = "http://" + rest
            self.note(
                directive.get("origin"), f"proxy_pass {target}: the instances speak plain HTTP, passed as http://"
            )
            return
        if host in self.upstream_names or host.startswith("127.") or host == "localhost" or host.startswith("unix"):
            return
        path = rest[len(authority) :]
        directive["args"][0] = f"{scheme}://{OUTSIDE_THE_RUN}{path}"
        self.note(directive.get("origin"), f"{directive['directive']} {target}: outside the run, answers 502 here")

    def _serve_tls(self, upstream_name: str) -> bool:
        """Whether every instance of the upstream serves TLS (so ``proxy_pass https://`` stays as it is)."""
        upstream = next(u for u in self.config.upstreams if u.name == upstream_name)
        instances = [i for service in upstream.services for i in self.by_service.get(service, [])]
        return bool(instances) and all(i.tls for i in instances)

    def upstream(self, directive: Directive) -> list[Directive]:
        upstream_name = directive["args"][0]
        block: list[Directive] = []
        for inner in directive["block"]:
            if inner["directive"] != "server":
                block.append(
                    {"directive": inner["directive"], "args": list(inner["args"]), "origin": inner.get("origin")}
                )
                continue
            server = upstream_server(inner["args"], inner.get("origin"), self.config.split_hosts)
            instances = self.by_service.get(server.service)
            if not instances:
                known = ", ".join(sorted(self.by_service)) or "none"
                raise ConfigError(
                    f"upstream {upstream_name} names service {server.service!r}, which has no instance "
                    f"(services started: {known})"
                )
            if server.unix_socket is not None:
                self.note(inner.get("origin"), f"server unix:{server.unix_socket}: served by instances on loopback TCP")
            for instance in instances:
                params = list(server.params)
                if self.settings.weights and instance.name in self.settings.weights:
                    params = [p for p in params if not p.startswith("weight=")]
                    params.insert(0, f"weight={self.settings.weights[instance.name]}")
                block.append(
                    {"directive": "server", "args": [instance.address, *params], "origin": inner.get("origin")}
                )
        if self.settings.zone and not any(d["directive"] == "zone" for d in block):
            block.insert(0, {"directive": "zone", "args": [f"{upstream_name}_zone", "64k"], "origin": None})
        return block


def _certificate_names(names: Sequence[str]) -> list[str]:
    """server_names as a certificate carries them: ``.example.com`` is example.com and *.example.com."""
    result: list[str] = []
    for name in names:
        if name.startswith("."):
            result += [name[1:], "*" + name]
        elif name.endswith(".*"):
            continue  # a trailing wildcard has no certificate form
        else:
            result.append(name)
    return result
