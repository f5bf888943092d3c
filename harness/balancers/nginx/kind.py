"""nginx as the core sees it: its shipped configs, its config reader and its process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerKind, BalancerSettings, FailoverWatch
from harness.runtimes.base import Runtime


class NginxKind(BalancerKind):
    name = "nginx"
    replay_module = "harness.balancers.nginx.replay"
    infra_folder = "nginx"
    shipped: ClassVar = {
        "round_robin": "nginx-round-robin.conf",
        "least_conn": "nginx-least-conn.conf",
        "ip_hash": "nginx-ip-hash.conf",
        "weighted": "nginx-weighted.conf",
        "health_checks": "nginx-health-checks.conf",
        "hash": "nginx-hash.conf",
        "random": "nginx-random.conf",
    }
    shipped_grpc: ClassVar = {"round_robin": "nginx-grpc.conf"}
    shipped_http2: ClassVar = {"round_robin": "nginx-http2.conf"}
    least_conn_ties_by_weight = True  # ngx_http_upstream_get_least_conn_peer
    group_word = "upstream"
    runs_in_cluster = True

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        from harness.balancers.nginx.config import NginxConfig
        from harness.balancers.nginx.failover import PassiveFailover
        from harness.balancers.nginx.health import passive_checks

        assert isinstance(config, NginxConfig)
        return PassiveFailover(passive_checks(config))

    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        from harness.balancers.nginx.config import load_config

        return load_config(path, upstream=upstream, route=route)

    def check_installed(self) -> None:
        from harness.balancers.nginx.balancer import nginx_binary

        nginx_binary()

    def version(self) -> str:
        from harness.balancers.nginx.balancer import nginx_version

        return nginx_version()

    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        from harness.balancers.nginx.balancer import NginxBalancer
        from harness.balancers.nginx.config import NginxConfig

        assert isinstance(config, NginxConfig)
        if runtime.traits.balancer_in_cluster:
            from harness.balancers.nginx.in_cluster import InClusterNginx
            from harness.runtimes.kubernetes import KubernetesRuntime

            assert isinstance(runtime, KubernetesRuntime)
            return InClusterNginx(config, run_dir, runtime, settings.workers, settings.zone)
        return NginxBalancer(
            config, run_dir, settings.workers, settings.zone, settings.weights, settings.port,
            container=settings.container, address=settings.address,
        )  # fmt: skip
