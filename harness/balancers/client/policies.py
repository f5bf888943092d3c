"""How a client picks an instance among those it may use: the four client-side policies.

Each policy follows the server-side algorithm it stands for, so the same claims hold:
round robin is nginx's smooth weighted round robin, least outstanding breaks ties with it
as nginx's least_conn does, and hash rehashes past an unusable instance as ip_hash does,
so only the clients of a dropped instance move.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Usable = Callable[[str], bool]
_REHASHES = 20  # as nginx's ip_hash, before it falls back to round robin


@dataclass(frozen=True)
class Target:
    name: str
    weight: int


class Policy(Protocol):
    def pick(self, targets: Sequence[Target], usable: Usable, client: str) -> Target | None:
        """One of ``targets`` that ``usable`` accepts, or None when there is none."""
        ...


class SmoothWeightedRoundRobin:
    """nginx's round robin: every usable target gains its weight, the richest is picked and pays the total."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, targets: Sequence[Target], usable: Usable, client: str) -> Target | None:
        best: Target | None = None
        total = 0
        for target in targets:
            if not usable(target.name):
                continue
            self._current[target.name] = self._current.get(target.name, 0) + target.weight
            total += target.weight
            if best is None or self._current[target.name] > self._current[best.name]:
                best = target
        if best is not None:
            self._current[best.name] -= total
        return best


class RandomPick:
    """A usable target at random, in proportion to its weight (nginx's ``random``)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def pick(self, targets: Sequence[Target], usable: Usable, client: str) -> Target | None:
        candidates = [target for target in targets if usable(target.name)]
        if not candidates:
            return None
        return self._rng.choices(candidates, weights=[target.weight for target in candidates])[0]


class LeastOutstanding:
    """The usable target with the fewest requests in flight per unit of weight; ties by round robin."""

    def __init__(self, outstanding: Mapping[str, int]) -> None:
        self._outstanding = outstanding
        self._ties = SmoothWeightedRoundRobin()

    def pick(self, targets: Sequence[Target], usable: Usable, client: str) -> Target | None:
        loads = {t.name: self._outstanding.get(t.name, 0) / t.weight for t in targets if usable(t.name)}
        if not loads:
            return None
        lowest = min(loads.values())
        return self._ties.pick(targets, lambda name: loads.get(name) == lowest, client)


class ClientHash:
    """The client's own address picks its target; an unusable one sends it to the next hash."""

    def __init__(self) -> None:
        self._fallback = SmoothWeightedRoundRobin()

    def pick(self, targets: Sequence[Target], usable: Usable, client: str) -> Target | None:
        if not targets:
            return None
        # Weighted: a target of weight w owns w slots of the ring of slots.
        slots = [target for target in targets for _ in range(target.weight)]
        for attempt in range(_REHASHES):
            target = slots[zlib.crc32(f"{client}#{attempt}".encode()) % len(slots)]
            if usable(target.name):
                return target
        return self._fallback.pick(targets, usable, client)


def make_policy(name: str, outstanding: Mapping[str, int]) -> Policy:
    """The policy a config names; ``outstanding`` is the live count of requests per target."""
    if name == "random":
        return RandomPick()
    if name == "least_outstanding":
        return LeastOutstanding(outstanding)
    if name == "hash":
        return ClientHash()
    return SmoothWeightedRoundRobin()
