"""kube-proxy's nftables rules as the core sees them: the Service manifests shipped, the rule set's process."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerKind, BalancerSettings, FailoverWatch
from harness.runtimes.base import Runtime


class KubeProxyKind(BalancerKind):
    name = "kube-proxy"
    replay_module = "harness.balancers.kubeproxy.replay"
    infra_folder = "k8s"
    shipped: ClassVar = {
        "round_robin": "01-service-clusterip.yaml",
        "ip_hash": "06-service-session-affinity.yaml",
        "health_checks": "01-service-clusterip.yaml",
        "random": "01-service-clusterip.yaml",
    }
    shipped_grpc: ClassVar = {"round_robin": "07-service-grpc.yaml", "random": "07-service-grpc.yaml"}
    shipped_http2: ClassVar = {"round_robin": "08-service-http2.yaml", "random": "08-service-http2.yaml"}
    unshipped: ClassVar = {
        "least_conn": "kube-proxy's iptables and nftables modes only pick at random "
        "(least connections is an IPVS scheduler)",
        "weighted": "a Service has no weights: every ready endpoint is equally likely",
        "hash": "no shipped config hashes a request key on it yet; pass --config with your own",
    }

    in_own_namespace = True
    balances_connections = True
    refused_commands: ClassVar = {"ui": "harness ui runs nginx, haproxy or client; kube-proxy runs with harness bench"}

    def exact_order_unless(self, weighted: bool) -> str | None:
        return "kube-proxy picks an endpoint at random (numgen random mod N): no order"

    def run_context(self, config: BalancerConfig) -> contextlib.AbstractContextManager[object]:
        # The rules, the instances and the load live in a namespace of the run's own.
        from harness.balancers.kubeproxy.config import KubeProxyConfig
        from harness.netns import NetworkNamespace

        assert isinstance(config, KubeProxyConfig)
        return NetworkNamespace((config.cluster_ip,))

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        from harness.balancers.kubeproxy.config import KubeProxyConfig
        from harness.balancers.kubeproxy.failover import ReadinessFailover

        assert isinstance(config, KubeProxyConfig)
        return ReadinessFailover(config.readiness)

    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        from harness.balancers.kubeproxy.config import load_config

        return load_config(path)

    def check_installed(self) -> None:
        from harness.netns import nft_binary

        nft_binary()

    def version(self) -> str:
        from harness.balancers.kubeproxy.balancer import nft_version

        return nft_version()

    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        from harness.balancers.kubeproxy.balancer import KubeProxyBalancer
        from harness.balancers.kubeproxy.config import KubeProxyConfig

        assert isinstance(config, KubeProxyConfig)
        return KubeProxyBalancer(config, run_dir)
