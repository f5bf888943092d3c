"""HAProxy as the core sees it: its shipped configs, its config reader and its process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerKind, BalancerSettings, FailoverWatch
from harness.runtimes.base import Runtime


class HaproxyKind(BalancerKind):
    name = "haproxy"
    replay_module = "harness.balancers.haproxy.replay"
    infra_folder = "haproxy"
    shipped: ClassVar = {
        "round_robin": "haproxy-round-robin.cfg",
        "least_conn": "haproxy-least-conn.cfg",
        "ip_hash": "haproxy-source.cfg",
        "weighted": "haproxy-weighted.cfg",
        "health_checks": "haproxy-health-checks.cfg",
    }
    group_word = "backend"
    shipped_grpc: ClassVar = {"round_robin": "haproxy-grpc.cfg"}
    shipped_http2: ClassVar = {"round_robin": "haproxy-http2.cfg"}
    unshipped: ClassVar = {
        "hash": "no shipped config hashes a request key on it yet; pass --config with your own",
        # `balance random` hashes a random key onto the consistent-hash ring, so each server's
        # share follows its arcs of the ring, not an even split.
        "random": "HAProxy's `balance random` hashes a random key onto its consistent-hash ring, so "
        "shares follow the ring's arcs (measured 31.4% to 34.5% over three servers, never even); "
        "pass --config to check a config of your own",
    }

    def exact_order_unless(self, weighted: bool) -> str | None:
        if weighted:
            return (
                "haproxy's weighted order is its own (not nginx's smooth weighted round robin); "
                "the share check below applies"
            )
        return None

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        from harness.balancers.haproxy.balancer import HaproxyBalancer
        from harness.balancers.haproxy.config import HaproxyConfig, active_checks
        from harness.balancers.haproxy.failover import ActiveFailover

        assert isinstance(balancer, HaproxyBalancer) and isinstance(config, HaproxyConfig)
        return ActiveFailover(balancer, active_checks(config))

    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        from harness.balancers.haproxy.config import load_config

        return load_config(path, backend=upstream, route=route)

    def check_installed(self) -> None:
        from harness.balancers.haproxy.balancer import haproxy_binary

        haproxy_binary()

    def version(self) -> str:
        from harness.balancers.haproxy.balancer import haproxy_version

        return haproxy_version()

    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        from harness.balancers.haproxy.balancer import HaproxyBalancer
        from harness.balancers.haproxy.config import HaproxyConfig

        assert isinstance(config, HaproxyConfig)
        return HaproxyBalancer(
            config, run_dir, settings.weights, settings.port, container=settings.container, address=settings.address
        )
