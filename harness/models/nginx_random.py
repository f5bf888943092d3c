"""nginx's ``random`` and ``random two [least_conn]``: what they may pick, as a set.

ngx_http_upstream_get_random_peer draws a peer by weight among the usable ones; any usable peer
may come out. ngx_http_upstream_get_random2_peer draws two different usable peers and keeps the
one with fewer connections per weight, so a peer can be picked only if some other usable peer
has at least as many connections per weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.models.peers import ModelPeer, Prediction, primaries, usable


def random_allowed(
    peers: Sequence[ModelPeer],
    two: bool,
    low: Mapping[str, int] | None = None,
    high: Mapping[str, int] | None = None,
    failed: frozenset[str] = frozenset(),
) -> Prediction:
    """The peers ``random`` (``two``: ``random two``) may pick when each peer's connections are
    known to lie between ``low`` and ``high``."""
    candidates = [peer for peer in primaries(tuple(peers)) if usable(peer, low, failed)]
    if not two or len(candidates) < 2:
        return Prediction.any_of({peer.name for peer in candidates})
    low, high = low or {}, high or {}
    return Prediction.any_of(
        {
            peer.name
            for peer in candidates
            if any(
                low.get(peer.name, 0) * other.weight <= high.get(other.name, 0) * peer.weight
                for other in candidates
                if other is not peer
            )
        }
    )
