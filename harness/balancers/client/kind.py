"""Client-side balancing as the core sees it: its shipped policies and the balancer in the load process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerKind, BalancerSettings, FailoverWatch
from harness.runtimes.base import Runtime


class ClientKind(BalancerKind):
    name = "client"
    replay_module = "harness.balancers.client.replay"
    infra_folder = "client"
    shipped: ClassVar = {
        "round_robin": "client-round-robin.toml",
        "least_conn": "client-least-outstanding.toml",
        "ip_hash": "client-hash.toml",
        "weighted": "client-weighted.toml",
        "health_checks": "client-health-checks.toml",
        "random": "client-random.toml",
    }
    has_address = False
    one_load_process = True
    refused_commands: ClassVar = {
        "up": "client-side balancing has no address to send to: each client picks an instance itself; "
        "run it with harness bench --balancer client"
    }
    unshipped: ClassVar = {"hash": "no shipped config hashes a request key on it yet; pass --config with your own"}

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        # The clients keep nginx's rule (max_fails, fail_timeout) and write nginx's log.
        from harness.balancers.client.config import ClientConfig
        from harness.balancers.nginx.failover import PassiveFailover

        assert isinstance(config, ClientConfig)
        return PassiveFailover(config.passive_checks())

    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        from harness.balancers.client.config import load_config

        return load_config(path)

    def check_installed(self) -> None:
        pass  # client-side balancing runs inside the harness: nothing to install

    def version(self) -> str:
        return "client-side balancing in the load process"

    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        from harness.balancers.client.balancer import ClientSideBalancer
        from harness.balancers.client.config import ClientConfig

        assert isinstance(config, ClientConfig)
        return ClientSideBalancer(config, run_dir, weights=settings.weights)
