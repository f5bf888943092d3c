"""What a config and an algorithm lead one to expect of the spread over given instances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.algorithms import Algorithm
from harness.balancers.base import BalancerConfig
from harness.checks.distribution import shares_from_weights
from harness.runtimes.base import Instance


def peer_weights(
    config: BalancerConfig, instances: Sequence[Instance], weights_by_instance: Mapping[str, int] | None
) -> list[tuple[str, int]]:
    """``(instance, weight)`` for every peer that takes traffic, in rendered config order."""
    peers: list[tuple[str, int]] = []
    for peer in config.peers():
        if not peer.serves:
            continue
        for instance in instances:
            if instance.service == peer.service:
                peers.append((instance.name, (weights_by_instance or {}).get(instance.name, peer.weight)))
    return peers


def expected_shares(
    algorithm: Algorithm,
    config: BalancerConfig,
    instances: Sequence[Instance],
    weights_by_instance: Mapping[str, int] | None,
) -> dict[str, float] | None:
    """Each instance's share of the load, or None when the algorithm claims no spread."""
    peers = peer_weights(config, instances, weights_by_instance)
    if algorithm.spread is None or not peers:
        return None
    if algorithm.spread == "even":
        return shares_from_weights({name: 1 for name, _ in peers})
    return shares_from_weights(dict(peers))
