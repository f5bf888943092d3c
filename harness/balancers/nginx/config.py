"""Reading a user's nginx config and rendering the one the harness runs.

A user's config names services in its upstreams (``server api-gateway:3000 weight=3;``),
as it would in docker-compose. The harness parses it with crossplane, expands each
service into the instances it started (keeping every per-server parameter), and points
everything that touches the file system or the network at the run's own directory and
loopback address, so that a run never touches the machine's nginx setup.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crossplane

from harness.balancers.base import Peer
from harness.errors import ConfigError
from harness.runtimes.base import Instance

Directive = dict[str, Any]

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
)
SYSTEM_CONFIG_DIR = Path("/etc/nginx")
_TEMP_PATH_DIRECTIVES = (
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
)
# Directives the harness owns: wherever the user put them, they are replaced.
_OWNED_DIRECTIVES = {"pid", "daemon", "error_log", "access_log", "log_format", "user", *_TEMP_PATH_DIRECTIVES}


@dataclass(frozen=True)
class UpstreamServer:
    """One ``server`` line of an upstream, before expansion."""

    service: str
    port: str | None
    params: tuple[str, ...]

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

    def has(self, directive: str) -> bool:
        return any(name == directive for name, _ in self.options)


@dataclass
class NginxConfig:
    """A user's config, parsed; ``tree`` is the main context as crossplane gives it."""

    path: Path
    tree: list[Directive]
    upstreams: list[Upstream] = field(default_factory=list)
    balancer: str = "nginx"

    def peers(self) -> list[Peer]:
        # The first upstream is the one under test; the shipped configs have one.
        return [
            Peer(server.service, server.weight, serves=not (server.backup or server.down))
            for server in self.upstreams[0].servers
        ]

    def shares_counts(self) -> bool:
        return self.upstreams[0].has("zone")

    @property
    def services(self) -> list[str]:
        """The service names the upstreams refer to, in config order, each once."""
        seen: dict[str, None] = {}
        for upstream in self.upstreams:
            for server in upstream.servers:
                seen.setdefault(server.service, None)
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
        for upstream in self.upstreams:
            if upstream.has("least_conn"):
                return "least_conn"
            if upstream.has("ip_hash"):
                return "ip_hash"
            if upstream.has("hash"):
                return "hash"
            if upstream.has("random"):
                return "random"
        servers = [server for upstream in self.upstreams for server in upstream.servers]
        if len({server.weight for server in servers}) > 1:
            return "weighted"
        if any(server.param("max_fails") is not None or server.param("fail_timeout") for server in servers):
            return "health_checks"
        return "round_robin"


_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def nginx_seconds(value: str) -> float:
    """nginx's time syntax (``30s``, ``500ms``, ``1m30s``, ``10``) in seconds."""
    total, number = 0.0, ""
    index = 0
    while index < len(value):
        char = value[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if value.startswith("ms", index) else char
        if unit not in _TIME_UNITS or not number:
            raise ConfigError(f"not an nginx time: {value!r}")
        total += float(number) * _TIME_UNITS[unit]
        number = ""
        index += len(unit)
    return total + (float(number) if number else 0.0)


@dataclass(frozen=True)
class PassiveChecks:
    """The settings that decide how nginx reacts to a failing peer, with nginx's defaults."""

    max_fails: int
    fail_timeout: float
    next_upstream: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    # What the balancer calls these settings, for verdicts that name them.
    retry_setting: str = "proxy_next_upstream"
    connect_setting: str = "proxy_connect_timeout"
    read_setting: str = "proxy_read_timeout"
    # Whether requests may go out on connections opened before (upstream keepalive, or a client's own pool).
    reuses_connections: bool = False

    def retries(self, condition: str) -> bool:
        """Whether nginx passes a request to the next peer on ``condition`` (error, timeout, http_503...)."""
        return "off" not in self.next_upstream and condition in self.next_upstream


def passive_checks(config: NginxConfig) -> PassiveChecks:
    """Reads max_fails/fail_timeout of the first upstream's first server and the proxy settings
    in effect where ``proxy_pass`` sends to it (the innermost block that sets them wins)."""
    upstream = config.upstreams[0]
    server = upstream.servers[0]
    settings = {
        "proxy_next_upstream": ("error", "timeout"),
        "proxy_connect_timeout": ("60s",),
        "proxy_read_timeout": ("60s",),
    }
    _collect_proxy_settings(config.tree, f"http://{upstream.name}", settings, {})
    max_fails = server.param("max_fails")
    fail_timeout = server.param("fail_timeout")
    return PassiveChecks(
        max_fails=int(max_fails) if max_fails else 1,
        fail_timeout=nginx_seconds(fail_timeout) if fail_timeout else 10.0,
        next_upstream=tuple(settings["proxy_next_upstream"]),
        connect_timeout=nginx_seconds(settings["proxy_connect_timeout"][0]),
        read_timeout=nginx_seconds(settings["proxy_read_timeout"][0]),
        reuses_connections=upstream.has("keepalive"),
    )


def _collect_proxy_settings(
    block: list[Directive], target: str, found: dict[str, tuple[str, ...]], inherited: dict[str, tuple[str, ...]]
) -> bool:
    """Walks down to the block with ``proxy_pass target``; fills ``found`` with what applies there."""
    here = dict(inherited)
    for directive in block:
        if directive["directive"] in found:
            here[directive["directive"]] = tuple(directive["args"])
    for directive in block:
        if directive["directive"] == "proxy_pass" and directive["args"] and directive["args"][0].rstrip("/") == target:
            found.update(here)
            return True
    return any(_collect_proxy_settings(d["block"], target, found, here) for d in block if "block" in d)


@dataclass(frozen=True)
class RenderSettings:
    """Where and how the rendered config runs."""

    run_dir: Path
    listen: str
    workers: int
    zone: bool = False
    weights: Mapping[str, int] | None = None  # per instance name, overriding the config


def load_config(path: Path) -> NginxConfig:
    """Parses a user's config (a whole nginx.conf or an http-level fragment).

    Raises ConfigError naming the file and line when crossplane cannot parse it, or when
    no upstream names a service.
    """
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False)
    except Exception as exc:  # crossplane raises its own errors for unreadable files
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if payload["errors"]:
        first = payload["errors"][0]
        raise ConfigError(f"cannot parse {first['file']}:{first.get('line', '?')}: {first['error']}")
    tree = _as_main_context(payload["config"][0]["parsed"])
    config = NginxConfig(path=path, tree=tree, upstreams=list(_upstreams(tree)))
    if not config.upstreams:
        raise ConfigError(f"{path} has no upstream block: nothing for the harness to balance")
    if not config.services:
        raise ConfigError(f"{path}: its upstreams name no server")
    return config


def _as_main_context(parsed: list[Directive]) -> list[Directive]:
    """Wraps an http-level fragment (upstream + server blocks, as in conf.d) into a whole config."""
    names = {directive["directive"] for directive in parsed}
    if "http" in names:
        tree = list(parsed)
    else:
        main = [d for d in parsed if d["directive"] in {"worker_processes", "events", "worker_rlimit_nofile"}]
        http = [d for d in parsed if d not in main]
        tree = [*main, {"directive": "http", "args": [], "block": http}]
    if not any(directive["directive"] == "events" for directive in tree):
        tree.insert(0, {"directive": "events", "args": [], "block": []})
    return tree


def _walk(block: Iterable[Directive]) -> Iterable[Directive]:
    for directive in block:
        yield directive
        yield from _walk(directive.get("block", []))


def _upstreams(tree: list[Directive]) -> Iterable[Upstream]:
    for directive in _walk(tree):
        if directive["directive"] != "upstream":
            continue
        servers, options = [], []
        for inner in directive.get("block", []):
            if inner["directive"] == "server":
                servers.append(_upstream_server(inner["args"]))
            else:
                options.append((inner["directive"], tuple(inner["args"])))
        yield Upstream(name=directive["args"][0], servers=tuple(servers), options=tuple(options))


def _upstream_server(args: Sequence[str]) -> UpstreamServer:
    address, *params = args
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, ""
    return UpstreamServer(service=host, port=port or None, params=tuple(params))


def render(config: NginxConfig, instances: Sequence[Instance], settings: RenderSettings) -> str:
    """The config nginx runs: services expanded into ``instances``, paths in the run dir.

    Raises ConfigError when an upstream names a service that has no instance.
    """
    tree = copy.deepcopy(config.tree)
    by_service: dict[str, list[Instance]] = {}
    for instance in instances:
        by_service.setdefault(instance.service, []).append(instance)
    tree = _render_block(tree, by_service, settings, config.path.parent)
    tree = _main_directives(settings) + [d for d in tree if d["directive"] != "worker_processes"]
    return str(crossplane.build(tree)) + "\n"


def _main_directives(settings: RenderSettings) -> list[Directive]:
    return [
        {"directive": "worker_processes", "args": [str(settings.workers)]},
        {"directive": "daemon", "args": ["off"]},
        {"directive": "pid", "args": [str(settings.run_dir / "nginx.pid")]},
        {"directive": "error_log", "args": [str(settings.run_dir / "error.log"), "notice"]},
    ]


def _http_directives(settings: RenderSettings) -> list[Directive]:
    log_format = "\t".join(variable for _, variable in ACCESS_LOG_FIELDS)
    directives: list[Directive] = [
        {"directive": "log_format", "args": [ACCESS_LOG_FORMAT_NAME, log_format]},
        # Buffered: one write per 64 KiB instead of one per request (timestamps are taken per
        # request all the same); nginx flushes at least every second and when it stops.
        {
            "directive": "access_log",
            "args": [str(settings.run_dir / "access.log"), ACCESS_LOG_FORMAT_NAME, "buffer=64k", "flush=1s"],
        },
    ]
    for name in _TEMP_PATH_DIRECTIVES:
        directives.append({"directive": name, "args": [str(settings.run_dir / "temp" / name)]})
    return directives


def _render_directive(
    directive: Directive,
    by_service: Mapping[str, list[Instance]],
    settings: RenderSettings,
    config_dir: Path,
) -> Directive | None:
    name = directive["directive"]
    if name in _OWNED_DIRECTIVES:
        return None
    directive = {key: value for key, value in directive.items() if key in {"directive", "args", "block"}}
    if name == "include":
        directive["args"] = [_resolve_include(directive["args"][0], config_dir)]
    if name == "listen":
        directive["args"] = [settings.listen, *_listen_params(directive["args"][1:])]
    if "block" not in directive:
        return directive
    if name == "upstream":
        directive["block"] = _render_upstream(directive, by_service, settings)
        return directive
    block = _render_block(directive["block"], by_service, settings, config_dir)
    if name == "http":
        block = _http_directives(settings) + block
    if name == "server" and not any(d["directive"] == "listen" for d in block):
        block.insert(0, {"directive": "listen", "args": [settings.listen]})
    directive["block"] = block
    return directive


def _render_block(
    block: Iterable[Directive],
    by_service: Mapping[str, list[Instance]],
    settings: RenderSettings,
    config_dir: Path,
) -> list[Directive]:
    rendered = (_render_directive(d, by_service, settings, config_dir) for d in block)
    return [d for d in rendered if d is not None]


def _listen_params(params: Sequence[str]) -> list[str]:
    # TLS and HTTP/2 need certificates the harness does not have; the rest still applies.
    return [param for param in params if param not in {"ssl", "http2", "quic"}]


def _resolve_include(target: str, config_dir: Path) -> str:
    path = Path(target)
    if path.is_absolute():
        return target
    for base in (config_dir, SYSTEM_CONFIG_DIR):
        if list(base.glob(target)):
            return str(base / target)
    return str(config_dir / target)


def _render_upstream(
    directive: Directive, by_service: Mapping[str, list[Instance]], settings: RenderSettings
) -> list[Directive]:
    upstream_name = directive["args"][0]
    block: list[Directive] = []
    for inner in directive["block"]:
        if inner["directive"] != "server":
            block.append({"directive": inner["directive"], "args": list(inner["args"])})
            continue
        server = _upstream_server(inner["args"])
        instances = by_service.get(server.service)
        if not instances:
            known = ", ".join(sorted(by_service)) or "none"
            raise ConfigError(
                f"upstream {upstream_name} names service {server.service!r}, which has no instance "
                f"(services started: {known})"
            )
        for instance in instances:
            params = list(server.params)
            if settings.weights and instance.name in settings.weights:
                params = [p for p in params if not p.startswith("weight=")]
                params.insert(0, f"weight={settings.weights[instance.name]}")
            block.append({"directive": "server", "args": [instance.address, *params]})
    if settings.zone and not any(d["directive"] == "zone" for d in block):
        block.insert(0, {"directive": "zone", "args": [f"{upstream_name}_zone", "64k"]})
    return block
