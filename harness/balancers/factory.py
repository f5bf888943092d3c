"""The balancers the harness can run, by name: their configs, processes and versions."""

from __future__ import annotations

from pathlib import Path

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.client import balancer as client
from harness.balancers.client import config as client_config
from harness.balancers.haproxy import balancer as haproxy
from harness.balancers.haproxy import config as haproxy_config
from harness.balancers.kubeproxy import balancer as kubeproxy
from harness.balancers.kubeproxy import config as kubeproxy_config
from harness.balancers.nginx import balancer as nginx
from harness.balancers.nginx import config as nginx_config
from harness.balancers.process import BalancerContainer
from harness.errors import SpecError


def load_balancer_config(
    balancer: str, path: Path, upstream: str | None = None, route: str | None = None
) -> BalancerConfig:
    """Parses ``path`` as a config of ``balancer``; ConfigError when it cannot.

    ``upstream`` (an nginx upstream, a HAProxy backend) and ``route`` (``HOST/PATH``) choose the
    group under test and the way the load reaches it.
    """
    if balancer == "nginx":
        return nginx_config.load_config(path, upstream=upstream, route=route)
    if balancer == "haproxy":
        return haproxy_config.load_config(path, backend=upstream, route=route)
    if balancer == "client":
        return client_config.load_config(path)
    if balancer == "kube-proxy":
        return kubeproxy_config.load_config(path)
    raise SpecError(f"unknown balancer {balancer!r}; choose nginx, haproxy, client or kube-proxy")


def check_installed(balancer: str) -> None:
    """Raises ToolMissingError, saying how to install it, when the balancer's binary is missing."""
    if balancer == "haproxy":
        haproxy.haproxy_binary()
    elif balancer == "nginx":
        nginx.nginx_binary()
    elif balancer == "kube-proxy":
        kubeproxy.nft_binary()
    # Client-side balancing runs inside the harness: nothing to install.


def version(balancer: str) -> str:
    if balancer == "client":
        return "client-side balancing in the load process"
    if balancer == "kube-proxy":
        return kubeproxy.nft_version()
    return haproxy.haproxy_version() if balancer == "haproxy" else nginx.nginx_version()


def make_balancer(
    config: BalancerConfig,
    run_dir: Path,
    workers: int,
    zone: bool,
    weights: dict[str, int] | None,
    port: int | None,
    container: BalancerContainer | None = None,
) -> Balancer:
    """The balancer for ``config``, not started yet; in a container of ``container`` if given."""
    if isinstance(config, haproxy_config.HaproxyConfig):
        return haproxy.HaproxyBalancer(config, run_dir, weights=weights, port=port, container=container)
    if isinstance(config, kubeproxy_config.KubeProxyConfig):
        return kubeproxy.KubeProxyBalancer(config, run_dir)
    if isinstance(config, client_config.ClientConfig):
        return client.ClientSideBalancer(config, run_dir, weights=weights)
    if isinstance(config, nginx_config.NginxConfig):
        return nginx.NginxBalancer(
            config, run_dir, workers=workers, zone=zone, weights=weights, port=port, container=container
        )
    raise SpecError(f"no balancer runs a {type(config).__name__}")
