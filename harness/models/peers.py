"""The peers of one balanced group as a model sees them, and what a model predicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelPeer:
    """One server of the group, named as the balancer's log names it (``127.0.1.3:8001``)."""

    name: str
    weight: int = 1
    backup: bool = False
    down: bool = False
    max_conns: int = 0  # 0: no limit


@dataclass(frozen=True)
class Prediction:
    """The peer the model says must be picked, or the peers it may be picked from."""

    allowed: frozenset[str]
    exact: str | None = None  # set when the algorithm leaves no choice

    @classmethod
    def one(cls, name: str) -> Prediction:
        return cls(frozenset({name}), name)

    @classmethod
    def any_of(cls, names: frozenset[str] | set[str]) -> Prediction:
        return cls(frozenset(names))

    def admits(self, name: str) -> bool:
        return name in self.allowed

    def __str__(self) -> str:
        return self.exact if self.exact is not None else "one of " + ", ".join(sorted(self.allowed))


def usable(peer: ModelPeer, conns: Mapping[str, int] | None, failed: frozenset[str] = frozenset()) -> bool:
    """Whether a balancer may pick ``peer`` now: not ``down``, not taken out after failures, not
    at its ``max_conns`` (the checks every nginx get-peer function makes before a peer counts)."""
    if peer.down or peer.name in failed:
        return False
    return not (peer.max_conns and conns is not None and conns.get(peer.name, 0) >= peer.max_conns)


def primaries(peers: tuple[ModelPeer, ...]) -> tuple[ModelPeer, ...]:
    return tuple(peer for peer in peers if not peer.backup)


def backups(peers: tuple[ModelPeer, ...]) -> tuple[ModelPeer, ...]:
    return tuple(peer for peer in peers if peer.backup)


@dataclass(frozen=True)
class PeerColumns:
    """The peers as arrays, for models judging many picks at once: each row of a ``low``/``high``
    matrix is one pick, each column one peer, holding the connections it may have had open."""

    peers: tuple[ModelPeer, ...]

    @property
    def weights(self) -> np.ndarray:
        return np.array([peer.weight for peer in self.peers], dtype=np.int64)

    @property
    def backup(self) -> np.ndarray:
        return np.array([peer.backup for peer in self.peers], dtype=bool)

    def usable(self, conns: np.ndarray) -> np.ndarray:
        """``usable`` of every peer at every pick, given its connections then."""
        down = np.array([peer.down for peer in self.peers], dtype=bool)
        limits = np.array([peer.max_conns for peer in self.peers], dtype=np.int64)
        usable: np.ndarray = ~down & ((limits == 0) | (conns < limits))
        return usable

    def tier(self, usable: np.ndarray) -> np.ndarray:
        """The peers a pick is made among: the usable primaries, or the usable backups when none is."""
        primaries = usable & ~self.backup
        tier: np.ndarray = np.where(primaries.any(axis=1, keepdims=True), primaries, usable & self.backup)
        return tier

    def none_surely_better(self, low: np.ndarray, high: np.ndarray, tier: np.ndarray) -> np.ndarray:
        """For each pick and peer q of the tier: no other peer p of the tier surely had fewer
        connections per weight (``low[q] * w[p] > high[p] * w[q]``)."""
        weights = self.weights
        allowed = tier.copy()
        for q in range(len(self.peers)):
            beaten = (low[:, [q]] * weights[None, :] > high * weights[q]) & tier
            beaten[:, q] = False
            allowed[:, q] &= ~beaten.any(axis=1)
        return allowed

    def some_at_least_as_busy(self, low: np.ndarray, high: np.ndarray, tier: np.ndarray) -> np.ndarray:
        """For each pick and peer q of the tier: some other peer p of the tier may have had as many
        connections per weight (``low[q] * w[p] <= high[p] * w[q]``), or q is the tier's only peer."""
        weights = self.weights
        allowed = tier.copy()
        alone = tier.sum(axis=1) < 2
        for q in range(len(self.peers)):
            matched = (low[:, [q]] * weights[None, :] <= high * weights[q]) & tier
            matched[:, q] = False
            allowed[:, q] &= matched.any(axis=1) | alone
        return allowed
