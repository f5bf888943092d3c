"""nginx's ``random`` and ``random two [least_conn]``: what they may pick, as a set.

ngx_http_upstream_get_random_peer draws a peer by weight among the usable ones; any usable peer
may come out. ngx_http_upstream_get_random2_peer draws two different usable peers and keeps the
one with fewer connections per weight, so a peer can be picked only if some other usable peer
has at least as many connections per weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.models.peers import ModelPeer, PeerColumns


def random_allowed(peers: Sequence[ModelPeer], two: bool, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """For each pick (row) and peer (column): whether ``random`` (``two``: ``random two``) may
    have picked it when each peer's connections lie between ``low`` and ``high``."""
    columns = PeerColumns(tuple(peers))
    tier = columns.usable(low) & ~columns.backup
    return columns.some_at_least_as_busy(low, high, tier) if two else tier
