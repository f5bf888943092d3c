"""A client-side balancing config: which instances a client may pick, how, and when it drops one.

There is no balancer process. Each client asks the harness's registry for the instances
of the config's services and picks one per request with the config's policy, as Ribbon,
gRPC or a service-mesh sidecar do. Failing instances are dropped with the same rule nginx
applies to a server (``max_fails`` failures, each within ``fail_timeout`` of the last,
take it out for ``fail_timeout``), so the passive-check claims hold both sides alike::

    policy = "round_robin"        # round_robin, random, least_outstanding, hash

    [passive_checks]
    max_fails = 3
    fail_timeout = "30s"
    retry_on = ["error", "timeout"]   # when a request moves to the next instance
    connect_timeout = "1s"
    read_timeout = "5s"

    [[servers]]
    service = "api-gateway"
    weight = 1
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.balancers.base import OneGroup, Peer, ServerClaims
from harness.balancers.nginx.units import nginx_seconds
from harness.checks.health_models import PassiveChecks
from harness.errors import ConfigError

POLICIES = ("round_robin", "random", "least_outstanding", "hash")
RETRY_CONDITIONS = ("error", "timeout", "http_500", "http_502", "http_503", "http_504")
# The algorithm each policy shows, named as ``harness bench --algo`` names it.
_ALGORITHM_OF_POLICY = {"random": "random", "least_outstanding": "least_conn", "hash": "ip_hash"}
# A DNS-style name: lower-case labels of letters, digits and inner hyphens, joined by dots.
_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ClientServer:
    service: str
    weight: int


@dataclass
class ClientConfig(OneGroup):
    """A parsed client-side config; what the BalancerConfig protocol asks of every config."""

    path: Path
    policy: str
    servers: tuple[ClientServer, ...]
    checks: PassiveChecks
    has_passive_checks: bool  # the file says how to drop instances, rather than taking the defaults
    balancer: str = "client"

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(server.service for server in self.servers))

    def claims(self) -> str:
        return ""

    def server_claims(self) -> ServerClaims:
        return ServerClaims()

    def inferred_algorithm(self) -> str:
        if self.policy in _ALGORITHM_OF_POLICY:
            return _ALGORITHM_OF_POLICY[self.policy]
        if len({server.weight for server in self.servers}) > 1:
            return "weighted"
        return "health_checks" if self.has_passive_checks else "round_robin"

    def peers(self) -> list[Peer]:
        return [Peer(server.service, server.weight, serves=True) for server in self.servers]

    def effective_workers(self, requested: int | None) -> int:
        return 1  # one picking state shared by every client of the load process

    def shares_counts(self) -> bool:
        return True

    def passive_checks(self) -> PassiveChecks:
        return self.checks


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def _seconds(path: Path, key: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            return nginx_seconds(value)
        except ConfigError:
            pass
    raise _fail(path, f'{key} must be a time such as "500ms" or "10s", got {value!r}')


def _passive_checks(path: Path, table: dict[str, Any]) -> PassiveChecks:
    unknown = set(table) - {"max_fails", "fail_timeout", "retry_on", "connect_timeout", "read_timeout"}
    if unknown:
        raise _fail(path, f"unknown passive_checks setting {sorted(unknown)[0]!r}")
    max_fails = table.get("max_fails", 1)
    if not isinstance(max_fails, int) or isinstance(max_fails, bool) or max_fails < 0:
        raise _fail(path, f"max_fails must be a whole number of 0 or more, got {max_fails!r}")
    retry_on = table.get("retry_on", ["error", "timeout"])
    if not isinstance(retry_on, list) or any(condition not in RETRY_CONDITIONS for condition in retry_on):
        raise _fail(path, f"retry_on must list conditions out of {', '.join(RETRY_CONDITIONS)}, got {retry_on!r}")
    return PassiveChecks(
        max_fails=max_fails,
        fail_timeout=_seconds(path, "fail_timeout", table.get("fail_timeout", "10s")),
        next_upstream=tuple(retry_on) or ("off",),
        connect_timeout=_seconds(path, "connect_timeout", table.get("connect_timeout", "60s")),
        read_timeout=_seconds(path, "read_timeout", table.get("read_timeout", "60s")),
        retry_setting="retry_on",
        connect_setting="connect_timeout",
        read_setting="read_timeout",
        reuses_connections=True,  # each client keeps one connection per instance open
    )


def _servers(path: Path, entries: Any) -> tuple[ClientServer, ...]:
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "no [[servers]] entry: nothing for the clients to balance")
    servers = []
    for entry in entries:
        service, weight = entry.get("service"), entry.get("weight", 1)
        if not isinstance(service, str) or not _SERVICE_NAME.match(service):
            raise _fail(path, f'a server\'s service must be a lower-case name such as "api-gateway", got {service!r}')
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise _fail(path, f"weight of {service} must be a whole number of 1 or more, got {weight!r}")
        if set(entry) - {"service", "weight"}:
            raise _fail(path, f"unknown server setting {sorted(set(entry) - {'service', 'weight'})[0]!r}")
        servers.append(ClientServer(service, weight))
    return tuple(servers)


def load_config(path: Path) -> ClientConfig:
    """Parses a client-side config; ConfigError names the file and the setting when it cannot."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not a TOML file: {exc}") from exc
    unknown = set(data) - {"policy", "passive_checks", "servers"}
    if unknown:
        raise _fail(path, f"unknown setting {sorted(unknown)[0]!r}")
    policy = data.get("policy", "round_robin")
    if policy not in POLICIES:
        raise _fail(path, f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    checks = data.get("passive_checks", {})
    if not isinstance(checks, dict):
        raise _fail(path, "passive_checks must be a table")
    return ClientConfig(
        path=path,
        policy=policy,
        servers=_servers(path, data.get("servers")),
        checks=_passive_checks(path, checks),
        has_passive_checks="passive_checks" in data,
    )
