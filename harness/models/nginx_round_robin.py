"""nginx's round robin and least_conn: smooth weighted round robin over the usable peers, and
least_conn's fewest-connections-per-weight with smooth weighted round robin between ties.

Both keep a ``current_weight`` per peer that lives as long as the worker (or the ``zone``, when
workers share one); a model object is that state, fed one pick at a time in the balancer's order.
Failures lower a peer's ``effective_weight`` in nginx; the models take peers as they are in a
run without failures, where ``effective_weight`` stays equal to ``weight``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness.models.peers import ModelPeer, PeerColumns, Prediction, backups, primaries, usable


class _Tier:
    """One list of peers (the primaries, or the backups) with nginx's per-peer current weights."""

    def __init__(self, peers: Sequence[ModelPeer]) -> None:
        self.peers = tuple(peers)
        self.current = [0] * len(self.peers)

    def smooth_pick(self, candidates: Sequence[int]) -> int:
        """ngx_http_upstream_get_peer: every candidate adds its weight to its current weight, the
        highest wins (the first in config order on a tie), and loses the candidates' total."""
        total = 0
        best = -1
        for index in candidates:
            self.current[index] += self.peers[index].weight
            total += self.peers[index].weight
            if best < 0 or self.current[index] > self.current[best]:
                best = index
        self.current[best] -= total
        return best

    def state(self) -> dict[str, int]:
        return {peer.name: value for peer, value in zip(self.peers, self.current, strict=True)}


class SmoothWeightedRoundRobin:
    """ngx_http_upstream_get_round_robin_peer: the primaries first; the backups only when no
    primary is usable (down, at max_conns, or taken out after failures)."""

    name = "nginx's smooth weighted round robin"

    def __init__(self, peers: Sequence[ModelPeer]) -> None:
        self.peers = tuple(peers)
        self.tiers = [_Tier(primaries(tuple(peers))), _Tier(backups(tuple(peers)))]

    def pick(self, conns: Mapping[str, int] | None = None, failed: frozenset[str] = frozenset()) -> Prediction | None:
        """The peer of the next request; None when nginx has none to pick (it answers 502)."""
        for tier in self.tiers:
            candidates = [i for i, peer in enumerate(tier.peers) if usable(peer, conns, failed)]
            if len(tier.peers) == 1 and candidates:
                return Prediction.one(tier.peers[0].name)  # peers->single: no state kept
            if candidates:
                return Prediction.one(tier.peers[tier.smooth_pick(candidates)].name)
        return None

    def allowed_under_max_conns(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Which peers max_conns leaves usable depends on connection counts: the primaries that may
        have had room, and the backups where every primary may have been full."""
        columns = PeerColumns(self.peers)
        open_primaries = columns.usable(low) & ~columns.backup
        all_may_be_full = ~(columns.usable(high) & ~columns.backup).any(axis=1, keepdims=True)
        allowed: np.ndarray = open_primaries | (columns.usable(low) & columns.backup & all_may_be_full)
        return allowed

    def period(self) -> list[str]:
        """One full period of the primaries' order with every peer usable: after ``sum(weights)``
        picks every current weight is back to zero."""
        tier = _Tier(self.tiers[0].peers)
        candidates = [i for i, peer in enumerate(tier.peers) if not peer.down]
        if not candidates:
            return []
        return [
            tier.peers[tier.smooth_pick(candidates)].name for _ in range(sum(tier.peers[i].weight for i in candidates))
        ]

    def state(self) -> dict[str, int]:
        """The current weights the next pick starts from, primaries then backups."""
        return {**self.tiers[0].state(), **self.tiers[1].state()}


class LeastConn:
    """ngx_http_upstream_get_least_conn_peer: the usable peer with the fewest connections per
    weight (``conns * best.weight < best.conns * weight``); several such peers are picked between
    by smooth weighted round robin, starting from the first of them. Backups as round robin's."""

    name = "nginx's least_conn"

    def __init__(self, peers: Sequence[ModelPeer]) -> None:
        self.peers = tuple(peers)
        self.tiers = [_Tier(primaries(tuple(peers))), _Tier(backups(tuple(peers)))]

    def pick(self, conns: Mapping[str, int], failed: frozenset[str] = frozenset()) -> Prediction | None:
        for tier in self.tiers:
            candidates = [i for i, peer in enumerate(tier.peers) if usable(peer, conns, failed)]
            if len(tier.peers) == 1 and candidates:
                return Prediction.one(tier.peers[0].name)
            if not candidates:
                continue
            fewest = _fewest_per_weight(tier.peers, candidates, conns)
            if len(fewest) == 1:
                return Prediction.one(tier.peers[fewest[0]].name)  # no tie: current weights untouched
            return Prediction.one(tier.peers[tier.smooth_pick(fewest)].name)
        return None

    def allowed(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """For each pick (row) and peer (column, in ``peers`` order), whether nginx may have picked
        it when each peer's connections at the pick are only known to lie between ``low`` and
        ``high``: a usable peer of the tier that no other peer surely beats per weight."""
        columns = PeerColumns(self.peers)
        return columns.none_surely_better(low, high, columns.tier(columns.usable(low)))

    def state(self) -> dict[str, int]:
        return {**self.tiers[0].state(), **self.tiers[1].state()}


def _fewest_per_weight(peers: tuple[ModelPeer, ...], candidates: Sequence[int], conns: Mapping[str, int]) -> list[int]:
    """The candidates tied at the fewest connections per weight, in config order."""
    best = candidates[0]
    tied = [best]
    for index in candidates[1:]:
        mine = conns.get(peers[index].name, 0) * peers[best].weight
        theirs = conns.get(peers[best].name, 0) * peers[index].weight
        if mine < theirs:
            best, tied = index, [index]
        elif mine == theirs:
            tied.append(index)
    return tied
