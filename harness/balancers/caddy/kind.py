"""Caddy as the core sees it: its shipped Caddyfiles, its config reader and its process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerKind, BalancerSettings, FailoverWatch
from harness.runtimes.base import Runtime


class CaddyKind(BalancerKind):
    name = "caddy"
    infra_folder = "caddy"
    shipped: ClassVar = {
        "round_robin": "caddy-round-robin.Caddyfile",
        "least_conn": "caddy-least-conn.Caddyfile",
        "ip_hash": "caddy-ip-hash.Caddyfile",
        "random": "caddy-random.Caddyfile",
        "hash": "caddy-hash.Caddyfile",
        "health_checks": "caddy-health-checks.Caddyfile",
    }
    unshipped: ClassVar = {"weighted": "Caddy 2.6 has no weights (weighted_round_robin came in 2.7)"}
    refused_commands: ClassVar = {"ui": "harness ui runs nginx, haproxy or client; caddy runs with harness bench"}

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        # Caddy's passive checks follow nginx's rule closely enough to be judged by it: failures
        # within a window take an upstream out for that window. Its attempts come from its debug log.
        from harness.balancers.caddy.access_log import attempts
        from harness.balancers.caddy.config import CaddyConfig
        from harness.balancers.nginx.failover import PassiveFailover

        assert isinstance(config, CaddyConfig)
        return PassiveFailover(config.passive_checks(), read_attempts=attempts)

    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        from harness.balancers.caddy.config import load_config

        return load_config(path)

    def check_installed(self) -> None:
        from harness.balancers.caddy.config import caddy_binary

        caddy_binary()

    def version(self) -> str:
        from harness.balancers.caddy.balancer import caddy_version

        return f"caddy {caddy_version()}"

    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        from harness.balancers.caddy.balancer import CaddyBalancer
        from harness.balancers.caddy.config import CaddyConfig

        assert isinstance(config, CaddyConfig)
        return CaddyBalancer(config, run_dir, settings.port, container=settings.container, address=settings.address)
