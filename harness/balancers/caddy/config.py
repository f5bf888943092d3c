"""What a user's Caddy config means for a run: its servers, the ``reverse_proxy`` under test, its
upstreams as services, its load-balancing policy and health checks.

A Caddyfile is read by Caddy itself (``caddy adapt``), so every directive means what it means
to Caddy; the harness works on the JSON that comes out (a JSON config is read as it is). As
with nginx, an upstream names a service (``reverse_proxy api-gateway:3000``) and the harness
expands it into one upstream per instance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.balancers.base import OneGroup, Peer, ServerClaims
from harness.checks.health_models import PassiveChecks
from harness.errors import ConfigError, ToolMissingError

INSTALL_HINT = "install it with `apt-get install -y caddy` (or run `make setup`)"
# Caddy's policies, as ``harness bench --algo`` names what they claim.
_ALGORITHMS = {"round_robin": "round_robin", "least_conn": "least_conn", "ip_hash": "ip_hash",
               "client_ip_hash": "ip_hash", "random": "random", "uri_hash": "hash", "header": "hash",
               "cookie": "hash"}  # fmt: skip
NANOSECONDS = 1_000_000_000
# Caddy waits for an upstream's answer as long as it takes unless told otherwise: longer than any run.
NO_READ_TIMEOUT = 86_400


def caddy_binary() -> str:
    """The caddy executable ($HARNESS_CADDY, else from PATH); ToolMissingError says how to install it."""
    chosen = os.environ.get("HARNESS_CADDY") or shutil.which("caddy") or "/usr/bin/caddy"
    if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
        raise ToolMissingError(f"caddy is not installed: {INSTALL_HINT}")
    return chosen


@dataclass(frozen=True)
class Proxy:
    """One ``reverse_proxy`` handler: where it sits in the JSON, its upstreams and settings."""

    server: str  # the name of its server in apps.http.servers
    handler: dict[str, Any]
    host: str | None = None  # the Host its route matches, when it matches one
    prefix: str = "/"  # the path its route matches (``/api/*`` -> ``/api/``)

    @property
    def dials(self) -> list[str]:
        return [str(upstream.get("dial", "")) for upstream in self.handler.get("upstreams", [])]

    @property
    def policy(self) -> dict[str, Any]:
        return dict(self.handler.get("load_balancing", {}).get("selection_policy", {}))

    @property
    def active(self) -> dict[str, Any]:
        return dict(self.handler.get("health_checks", {}).get("active", {}))

    @property
    def passive(self) -> dict[str, Any]:
        return dict(self.handler.get("health_checks", {}).get("passive", {}))


@dataclass
class CaddyConfig(OneGroup):
    path: Path
    adapted: dict[str, Any]  # Caddy's JSON config
    balancer: str = "caddy"
    proxies: list[Proxy] = field(default_factory=list)

    @property
    def under_test(self) -> Proxy:
        return self.proxies[0]

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(service_of(dial) for dial in self.under_test.dials))

    @property
    def side_services(self) -> list[str]:
        mine = set(self.services)
        others = (service_of(dial) for proxy in self.proxies[1:] for dial in proxy.dials)
        return [service for service in dict.fromkeys(others) if service not in mine]

    def peers(self) -> list[Peer]:
        return [Peer(service, 1, serves=True) for service in self.services]

    def effective_workers(self, requested: int | None) -> int:
        return 1  # one process: every counter is shared

    def shares_counts(self) -> bool:
        return True

    def claims(self) -> str:
        policy = self.under_test.policy.get("policy", "random")
        checks = []
        if self.under_test.active:
            checks.append(f"active checks of {self.under_test.active.get('uri', '/')}")
        if self.under_test.passive:
            fail_duration = seconds(self.under_test.passive.get("fail_duration", 0))
            checks.append(f"passive checks (fail_duration {fail_duration:g}s)")
        extra = f", {', '.join(checks)}" if checks else ""
        where = f"{self.path.name} (server {self.under_test.server})"
        return f"claims inferred from reverse_proxy in {where}: lb_policy {policy}{extra}"

    def server_claims(self) -> ServerClaims:
        policy = self.under_test.policy
        name = policy.get("policy", "random")
        key = {"uri_hash": "$request_uri", "ip_hash": "$remote_addr", "client_ip_hash": "$remote_addr"}.get(name)
        if name == "header":
            key = "$http_" + str(policy.get("field", "")).lower().replace("-", "_")
        if name == "cookie":
            key = "$cookie_" + str(policy.get("name", "lb"))
        return ServerClaims(
            where=self.path.name,
            hash_key=key if name in {"uri_hash", "header"} else None,
            # Caddy hashes with rendezvous (highest random weight) hashing: an upstream that leaves
            # takes only its own keys with it.
            consistent=name in {"uri_hash", "header"},
            shared_counts=True,
            # random_choose 2: of two picks, the one with fewer requests in flight.
            avoids_busy=name == "random_choose",
        )

    def passive_checks(self) -> PassiveChecks:
        """Caddy's passive health checks in the terms the failover analysis uses.

        An upstream is out while it has ``max_fails`` failures younger than ``fail_duration``
        (Caddy counts none without ``fail_duration``). A request is tried on another upstream
        only when it could not be sent (a refused or timed-out dial), for ``lb_try_duration``."""
        proxy = self.under_test
        passive = proxy.passive
        fail_duration = seconds(passive.get("fail_duration", 0))
        tries = seconds(proxy.handler.get("load_balancing", {}).get("try_duration", 0)) > 0
        transport = proxy.handler.get("transport", {})
        return PassiveChecks(
            max_fails=int(passive.get("max_fails", 1)) if fail_duration > 0 else 0,
            fail_timeout=fail_duration,
            next_upstream=("error",) if tries else ("off",),
            connect_timeout=seconds(transport.get("dial_timeout", 3 * NANOSECONDS)),
            read_timeout=seconds(transport["response_header_timeout"]) if "response_header_timeout" in transport
            else float(NO_READ_TIMEOUT),
            retry_setting="lb_try_duration", connect_setting="dial_timeout", read_setting="response_header_timeout",
            reuses_connections=True,  # Caddy keeps its connections to the upstreams open
            active_interval=seconds(proxy.active.get("interval", 30 * NANOSECONDS)) * int(
                proxy.active.get("passes", 1)) if proxy.active else 0.0,
        )  # fmt: skip

    def inferred_algorithm(self) -> str:
        name = str(self.under_test.policy.get("policy", "random"))
        algorithm = _ALGORITHMS.get(name)
        if name == "round_robin" and (self.under_test.active or self.under_test.passive):
            return "health_checks"
        if algorithm is None:
            return f"lb_policy {name}"  # no algorithm of the harness; bench asks for --algo
        return algorithm


def seconds(duration: object) -> float:
    """A duration of Caddy's JSON (nanoseconds, or a string such as ``500ms``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration) / NANOSECONDS
    text = str(duration)
    for unit, factor in (("ms", 0.001), ("us", 0.000001), ("ns", 1e-9), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * factor
    raise ConfigError(f"not a Caddy duration: {duration!r}")


def service_of(dial: str) -> str:
    """``api-gateway:3000`` -> ``api-gateway``: the upstream's host names the service."""
    host, _, _ = dial.rpartition(":")
    return host or dial


def load_config(path: Path) -> CaddyConfig:
    """Reads a Caddyfile through ``caddy adapt`` (or a JSON config as it is); ConfigError with Caddy's
    own message when it cannot."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.suffix == ".json":
        try:
            adapted = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"cannot parse {path}:{exc.lineno}: {exc.msg}") from exc
    else:
        done = subprocess.run(
            [caddy_binary(), "adapt", "--config", str(path), "--adapter", "caddyfile"],
            capture_output=True, text=True, check=False, cwd=path.parent, timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "caddy adapt failed"
            raise ConfigError(f"caddy rejected {path}: {message}")
        adapted = json.loads(done.stdout)
    config = CaddyConfig(path=path, adapted=adapted)
    config.proxies = list(_proxies(adapted))
    if not config.proxies or not config.under_test.dials:
        raise ConfigError(f"{path} has no reverse_proxy with an upstream: nothing for the harness to balance")
    return config


def _proxies(adapted: dict[str, Any]) -> Iterator[Proxy]:
    servers = adapted.get("apps", {}).get("http", {}).get("servers", {})
    for name, server in servers.items():
        for handler, host, prefix in _handlers(server.get("routes", []), None, "/"):
            if handler.get("handler") == "reverse_proxy":
                yield Proxy(name, handler, host, prefix)


def _handlers(
    routes: list[dict[str, Any]], host: str | None, prefix: str
) -> Iterator[tuple[dict[str, Any], str | None, str]]:
    """Every handler of ``routes`` with the Host and path its route matches, depth first through subroutes."""
    for route in routes:
        matchers = route.get("match", [])
        hosts = [h for matcher in matchers for h in matcher.get("host", [])]
        paths = [p for matcher in matchers for p in matcher.get("path", [])]
        here = next((h for h in hosts if "*" not in h), host)
        # `/api/*` matches every path under /api/: the load goes there.
        under = next((p.rstrip("*") for p in paths if p.endswith("*") and "*" not in p[:-1]), prefix)
        for handler in route.get("handle", []):
            yield handler, here, under
            if handler.get("handler") == "subroute":
                yield from _handlers(handler.get("routes", []), here, under)
