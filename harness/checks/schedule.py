"""The order in which nginx picks peers one request at a time: one period of its smooth weighted
round robin (``harness.models.nginx_round_robin``), for the sequential-order check."""

from __future__ import annotations

from collections.abc import Sequence

from harness.models.nginx_round_robin import SmoothWeightedRoundRobin
from harness.models.peers import ModelPeer


def smooth_weighted_round_robin(peers: Sequence[tuple[str, int]]) -> list[str]:
    """One full period of nginx's pick order for ``(name, weight)`` peers in config order.

    After ``sum(weights)`` picks every current weight is back to zero, so the sequence repeats."""
    if not peers or any(weight < 1 for _, weight in peers):
        raise ValueError("peers need a positive weight each")
    return SmoothWeightedRoundRobin([ModelPeer(name, weight) for name, weight in peers]).period()
