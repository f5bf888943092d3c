"""The algorithms the harness knows and what each claims; which shipped config shows an
algorithm on a balancer is the balancer's own (its kind, ``harness.balancers.registry``).

A claim is what the checks hold the balancer to. ``--algo`` picks the claims and
``--config`` the config, so running one algorithm's claims against another's config is
how a user proves a config does not do what they think.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.balancers.registry import BALANCERS, KINDS, kind_of

__all__ = ["ALGORITHMS", "ALGORITHM_NAMES", "BALANCERS", "Algorithm", "algorithms_for", "shipped_config"]

Spread = Literal["even", "weights"]


@dataclass(frozen=True)
class Algorithm:
    name: str
    claim: str
    spread: Spread | None  # how concurrent load should split, None when the algorithm makes no such claim
    exact_order: bool  # sequential requests follow nginx's (smooth weighted) round robin
    sticky: bool  # each client address stays on one instance
    avoids_busy: bool  # new requests avoid an instance holding a long request

    def shipped_for(self, balancer: str) -> bool:
        """Whether a config shipped for ``balancer`` shows this algorithm."""
        return kind_of(balancer).ships(self.name)

    @property
    def unshipped_because(self) -> dict[str, str]:
        """Each balancer no shipped config shows this algorithm on, and why."""
        return {name: kind.unshipped.get(self.name, "no shipped config shows it") for name, kind in KINDS.items()
                if not kind.ships(self.name)}  # fmt: skip


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            "round_robin",
            "each request goes to the next instance in order",
            spread="even",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
        ),
        Algorithm(
            "least_conn",
            "requests go to the instance with the fewest active connections",
            spread=None,
            exact_order=False,
            sticky=False,
            avoids_busy=True,
        ),
        Algorithm(
            "ip_hash",
            "the same client address always reaches the same instance",
            spread=None,
            exact_order=False,
            sticky=True,
            avoids_busy=False,
        ),
        Algorithm(
            "weighted",
            "instances get traffic in proportion to their weights",
            spread="weights",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
        ),
        Algorithm(
            "health_checks",
            "round robin with health checks (nginx: passive max_fails / fail_timeout; HAProxy: active)",
            spread="even",
            exact_order=True,
            sticky=False,
            avoids_busy=False,
        ),
        Algorithm(
            "hash",
            "requests with one key reach one instance whatever client sends them (consistent: removing an "
            "instance moves only its keys)",
            spread=None,
            exact_order=False,
            sticky=False,
            avoids_busy=False,
        ),
        Algorithm(
            "random",
            "each request goes to an instance picked at random",
            spread="even",
            exact_order=False,
            sticky=False,
            avoids_busy=False,
        ),
    )
}
ALGORITHM_NAMES = tuple(ALGORITHMS)


def algorithms_for(balancer: str) -> tuple[str, ...]:
    """The algorithms with a shipped config for ``balancer``: what ``--algo all`` runs."""
    return tuple(name for name, algorithm in ALGORITHMS.items() if algorithm.shipped_for(balancer))


def shipped_config(algorithm: Algorithm, balancer: str = "nginx", grpc: bool = False, http2: bool = False) -> Path:
    """The shipped config that shows ``algorithm`` on ``balancer`` (one passing gRPC, with ``grpc``;
    one taking plain HTTP/2, with ``http2``); SpecError when none does."""
    return kind_of(balancer).shipped_config(algorithm.name, grpc, http2)
