"""The peers of one balanced group as a model sees them, and what a model predicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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
