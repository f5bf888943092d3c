"""The Caddy config the harness runs (JSON), made from the user's: upstreams expanded into the
run's instances, every server on loopback without automatic HTTPS, the access log, storage
and admin endpoint the run's own."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.instance import by_service as instances_by_service
from harness.balancers.caddy.access_log import PROXY_LOG
from harness.balancers.caddy.config import CaddyConfig, service_of
from harness.errors import ConfigError
from harness.runtimes.base import Instance


@dataclass(frozen=True)
class RenderSettings:
    run_dir: Path
    listens: Mapping[str, str]  # each server's name and the loopback address it listens on here
    admin: str  # the admin endpoint's address, for reloads


def render(
    config: CaddyConfig, instances: Sequence[Instance], settings: RenderSettings
) -> tuple[dict[str, Any], list[str]]:
    """(the JSON config Caddy runs, what was changed for the run, one line each)."""
    by_service = instances_by_service(instances)
    rendered = copy.deepcopy(config.adapted)
    changes: list[str] = []
    # The admin endpoint on loopback (reloads post the new config there), never saved elsewhere.
    rendered["admin"] = {"listen": settings.admin, "config": {"persist": False}}
    # Storage (certificates, locks) in the run; Caddy's own logs on stderr, the access log in the run.
    rendered["storage"] = {"module": "file_system", "root": str(settings.run_dir / "caddy-data")}
    if rendered.get("logging", {}).get("logs"):
        changes.append("logging: replaced by the run's access log")
    rendered["logging"] = {
        "logs": {
            "default": {"exclude": ["http.log.access", "http.handlers.reverse_proxy"]},
            "access": {
                "writer": {"output": "file", "filename": str(settings.run_dir / "access.log"), "roll": False},
                "encoder": {"format": "json"},
                "include": ["http.log.access"],
            },
            # Every round trip to an upstream, with its status or error: the balancer's view of attempts.
            "proxy": {
                # Never rolled: Caddy rolls a file at 100 MB by default, and a 40 s failover scenario
                # writes more than that here (86,751 round trips, 110 MB); the analysis reads one file.
                "writer": {"output": "file", "filename": str(settings.run_dir / PROXY_LOG), "roll": False},
                "encoder": {"format": "json"},
                "level": "DEBUG",
                "include": ["http.handlers.reverse_proxy"],
            },
        }
    }
    if "tls" in rendered.get("apps", {}):
        del rendered["apps"]["tls"]
        changes.append("apps.tls: dropped, the run's servers speak plain HTTP on loopback")
    servers = rendered.get("apps", {}).get("http", {}).get("servers", {})
    for name, server in servers.items():
        listen = settings.listens[name]
        changes.append(f"server {name}: listen {', '.join(server.get('listen', []))} -> {listen}")
        server["listen"] = [listen]
        # No certificates from the internet and no redirect to HTTPS: the run listens on its own addresses.
        server["automatic_https"] = {"disable": True}
        server.pop("tls_connection_policies", None)
        server["logs"] = {}
        for handler in _reverse_proxies(server.get("routes", [])):
            handler["upstreams"] = [
                {"dial": instance.address}
                for dial in handler.get("upstreams", [])
                for instance in _instances(by_service, service_of(str(dial.get("dial", ""))), name)
            ]
            if handler.get("transport", {}).get("tls") is not None:
                del handler["transport"]["tls"]
                changes.append(f"server {name}: TLS to the upstreams dropped, the instances serve plain HTTP")
    return rendered, changes


def _instances(by_service: Mapping[str, list[Instance]], service: str, server: str) -> list[Instance]:
    found = by_service.get(service)
    if not found:
        known = ", ".join(sorted(by_service)) or "none"
        raise ConfigError(f"server {server} proxies to {service!r}, which has no instance (services started: {known})")
    return found


def _reverse_proxies(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for route in routes:
        for handler in route.get("handle", []):
            if handler.get("handler") == "reverse_proxy":
                found.append(handler)
            if handler.get("handler") == "subroute":
                found += _reverse_proxies(handler.get("routes", []))
    return found
