"""The algorithms the harness knows: which shipped config shows each, and what it claims.

A claim is what the checks hold the balancer to. ``--algo`` picks the claims and
``--config`` the config, so running one algorithm's claims against another's config is
how a user proves a config does not do what they think.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.errors import SpecError
from harness.infra import infra_path

Spread = Literal["even", "weights"]


@dataclass(frozen=True)
class Algorithm:
    name: str
    config_file: str
    claim: str
    spread: Spread | None  # how concurrent load should split, None when the algorithm makes no such claim
    exact_order: bool  # sequential requests follow nginx's (smooth weighted) round robin
    sticky: bool  # each client address stays on one instance
    avoids_busy: bool  # new requests avoid an instance holding a long request
    haproxy_config_file: str = ""
    client_config_file: str = ""
    kube_proxy_config_file: str = ""  # a Service manifest under infra/k8s/
    unshipped_because: dict[str, str] = field(default_factory=dict)  # balancer -> why no config shows it

    def shipped_for(self, balancer: str) -> bool:
        return balancer not in self.unshipped_because


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            "round_robin",
            "nginx-round-robin.conf",
            "each request goes to the next instance in order",
            spread="even",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
            haproxy_config_file="haproxy-round-robin.cfg",
            client_config_file="client-round-robin.toml",
            kube_proxy_config_file="01-service-clusterip.yaml",
        ),
        Algorithm(
            "least_conn",
            "nginx-least-conn.conf",
            "requests go to the instance with the fewest active connections",
            spread=None,
            exact_order=False,
            sticky=False,
            avoids_busy=True,
            haproxy_config_file="haproxy-least-conn.cfg",
            client_config_file="client-least-outstanding.toml",
            unshipped_because={
                "kube-proxy": "kube-proxy's iptables and nftables modes only pick at random "
                "(least connections is an IPVS scheduler)"
            },
        ),
        Algorithm(
            "ip_hash",
            "nginx-ip-hash.conf",
            "the same client address always reaches the same instance",
            spread=None,
            exact_order=False,
            sticky=True,
            avoids_busy=False,
            haproxy_config_file="haproxy-source.cfg",
            client_config_file="client-hash.toml",
            kube_proxy_config_file="06-service-session-affinity.yaml",
        ),
        Algorithm(
            "weighted",
            "nginx-weighted.conf",
            "instances get traffic in proportion to their weights",
            spread="weights",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
            haproxy_config_file="haproxy-weighted.cfg",
            client_config_file="client-weighted.toml",
            unshipped_because={"kube-proxy": "a Service has no weights: every ready endpoint is equally likely"},
        ),
        Algorithm(
            "health_checks",
            "nginx-health-checks.conf",
            "round robin with health checks (nginx: passive max_fails / fail_timeout; HAProxy: active)",
            spread="even",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
            haproxy_config_file="haproxy-health-checks.cfg",
            client_config_file="client-health-checks.toml",
            kube_proxy_config_file="01-service-clusterip.yaml",
        ),
        Algorithm(
            "hash",
            "nginx-hash.conf",
            "requests with one key reach one instance whatever client sends them (consistent: removing an "
            "instance moves only its keys)",
            spread=None,
            exact_order=False,
            sticky=False,
            avoids_busy=False,
            unshipped_because={
                balancer: "no shipped config hashes a request key on it yet; pass --config with your own"
                for balancer in ("haproxy", "client", "kube-proxy")
            },
        ),
        Algorithm(
            "random",
            "nginx-random.conf",
            "each request goes to an instance picked at random",
            spread="even",
            exact_order=False,
            sticky=False,
            avoids_busy=False,
            client_config_file="client-random.toml",
            kube_proxy_config_file="01-service-clusterip.yaml",
            # HAProxy's `balance random` hashes a random key onto its consistent-hash ring, so
            # each server's share follows its arcs of the ring, not an even split.
            unshipped_because={
                "haproxy": "HAProxy's `balance random` hashes a random key onto its consistent-hash ring, so "
                "shares follow the ring's arcs (measured 31.4% to 34.5% over three servers, never even); "
                "pass --config to check a config of your own"
            },
        ),
    )
}
ALGORITHM_NAMES = tuple(ALGORITHMS)


BALANCERS = ("nginx", "haproxy", "client", "kube-proxy")


def algorithms_for(balancer: str) -> tuple[str, ...]:
    """The algorithms with a shipped config for ``balancer``: what ``--algo all`` runs."""
    return tuple(name for name, algorithm in ALGORITHMS.items() if algorithm.shipped_for(balancer))


def shipped_config(algorithm: Algorithm, balancer: str = "nginx") -> Path:
    """The shipped config that shows ``algorithm`` on ``balancer``; SpecError when none does."""
    if not algorithm.shipped_for(balancer):
        raise SpecError(f"no shipped {balancer} config for {algorithm.name}: {algorithm.unshipped_because[balancer]}")
    if balancer == "haproxy":
        return infra_path("haproxy", algorithm.haproxy_config_file)
    if balancer == "client":
        return infra_path("client", algorithm.client_config_file)
    if balancer == "kube-proxy":
        return infra_path("k8s", algorithm.kube_proxy_config_file)
    return infra_path("nginx", algorithm.config_file)
