"""The order in which nginx picks peers, computed the way nginx computes it.

nginx's round robin is smooth weighted round robin (ngx_http_upstream_get_peer): each
pick adds every peer's weight to its current value, takes the highest (the first in
config order on a tie), and subtracts the total weight from the winner. With equal
weights that is plain rotation in config order. After ``sum(weights)`` picks every
current value is back to zero, so the sequence is periodic with that period.
"""

from __future__ import annotations

from collections.abc import Sequence


def smooth_weighted_round_robin(peers: Sequence[tuple[str, int]]) -> list[str]:
    """One full period of nginx's pick order for ``(name, weight)`` peers in config order."""
    if not peers or any(weight < 1 for _, weight in peers):
        raise ValueError("peers need a positive weight each")
    total = sum(weight for _, weight in peers)
    current = [0] * len(peers)
    picks: list[str] = []
    for _ in range(total):
        best = 0
        for index, (_, weight) in enumerate(peers):
            current[index] += weight
            if current[index] > current[best]:
                best = index
        current[best] -= total
        picks.append(peers[best][0])
    return picks
