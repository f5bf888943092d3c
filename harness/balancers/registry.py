"""The balancers the harness can run, by name; the core asks a kind what it needs to know."""

from __future__ import annotations

from harness.balancers.caddy.kind import CaddyKind
from harness.balancers.client.kind import ClientKind
from harness.balancers.haproxy.kind import HaproxyKind
from harness.balancers.kind import BalancerKind
from harness.balancers.kubeproxy.kind import KubeProxyKind
from harness.balancers.nginx.kind import NginxKind
from harness.errors import SpecError

KINDS: dict[str, BalancerKind] = {
    kind.name: kind for kind in (NginxKind(), HaproxyKind(), CaddyKind(), ClientKind(), KubeProxyKind())
}
BALANCERS = tuple(KINDS)
DEFAULT_BALANCER = "nginx"


def kind_of(balancer: str) -> BalancerKind:
    """The kind called ``balancer``; SpecError naming the known ones when there is none."""
    if balancer not in KINDS:
        raise SpecError(f"unknown balancer {balancer!r}; choose from {', '.join(BALANCERS)}")
    return KINDS[balancer]
