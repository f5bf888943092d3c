"""The algorithms the harness knows: which shipped config shows each, and what it claims.

A claim is what the checks hold the balancer to. ``--algo`` picks the claims and
``--config`` the config, so running one algorithm's claims against another's config is
how a user proves a config does not do what they think.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
        ),
    )
}
ALGORITHM_NAMES = tuple(ALGORITHMS)


def infra_dir() -> Path:
    """The folder with the shipped configs: $HARNESS_INFRA_DIR, or ``infra/`` of this checkout."""
    override = os.environ.get("HARNESS_INFRA_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "infra"


BALANCERS = ("nginx", "haproxy")


def shipped_config(algorithm: Algorithm, balancer: str = "nginx") -> Path:
    """The shipped config that shows ``algorithm`` on ``balancer``."""
    if balancer == "haproxy":
        return infra_dir() / "haproxy" / algorithm.haproxy_config_file
    return infra_dir() / "nginx" / algorithm.config_file
