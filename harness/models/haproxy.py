"""HAProxy's ``balance source`` (map-based and ``hash-type consistent``) and the sets its
other algorithms may pick from, computed as HAProxy 2.6 computes them.

Map-based hashing (lb_map.c) lays the usable servers out in a table of ``sum(weights / gcd)``
slots (recalc_server_map: each slot goes to the server whose running score, plus the table's
size, divided by the size is highest, the first declared on a tie) and takes slot
``hash % size``. Consistent hashing (lb_chash.c) puts ``16 * weight`` nodes per server on a
ring of 2^32, keyed ``full_hash(id * 4096 + node)`` with the server's id (its position in
the backend, from 1), and takes the node closest to the hash, the one before it on a tie
(chash_get_server_hash). ``balance source`` hashes the IPv4 address as a 32-bit number
(get_server_sh), through ``full_hash`` with ``hash-type ... avalanche`` (and, as measured on
HAProxy 2.6, always for ``consistent``).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from math import gcd

from harness.models.peers import ModelPeer, Prediction

NODES_PER_WEIGHT = 16  # BE_WEIGHT_SCALE
NODE_RANGE = 256 * NODES_PER_WEIGHT  # SRV_EWGHT_RANGE
MASK = 0xFFFFFFFF


def full_hash(value: int) -> int:
    """Bob Jenkins' 32-bit integer hash, then a multiplication by a prime near 3/4 of 2^32 (full_hash)."""
    a = value & MASK
    a = ((a + 0x7ED55D16) + (a << 12)) & MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK
    a = ((a + 0x165667B1) + (a << 5)) & MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK
    a = ((a + 0xFD7046C5) + (a << 3)) & MASK
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & MASK
    return (a * 3221225473) & MASK


def source_hash(address: str, avalanche: bool = False) -> int:
    """get_server_sh: the IPv4 address as a number (IPv6: its four words XORed)."""
    packed = ipaddress.ip_address(address).packed
    value = 0
    for start in range(0, len(packed), 4):
        value ^= int.from_bytes(packed[start : start + 4], "big")
    return full_hash(value) if avalanche else value


def usable_tier(peers: Sequence[ModelPeer]) -> tuple[ModelPeer, ...]:
    """The servers HAProxy balances over: the usable active ones, else the first usable backup
    (without ``option allbackups``)."""
    active = tuple(peer for peer in peers if not peer.backup and not peer.down)
    if active:
        return active
    return tuple(peer for peer in peers if peer.backup and not peer.down)[:1]


def server_map(peers: Sequence[ModelPeer]) -> list[str]:
    """recalc_server_map over the usable servers, weights divided by their greatest common divisor."""
    tier = usable_tier(peers)
    if not tier:
        return []
    divisor = 0
    for peer in tier:
        divisor = gcd(divisor, peer.weight)
    weights = [peer.weight // divisor for peer in tier]
    total = sum(weights)
    if total == 1 or len(tier) == 1:
        return [tier[0].name] * total
    scores = [0] * len(tier)
    table = []
    for _ in range(total):
        best, best_value = -1, 0
        for index, weight in enumerate(weights):
            scores[index] += weight
            value = (scores[index] + total) // total
            if best < 0 or value > best_value:
                best, best_value = index, value
        table.append(tier[best].name)
        scores[best] -= total
    return table


@dataclass(frozen=True)
class SourceMap:
    """``balance source`` with map-based hashing (HAProxy's default hash-type)."""

    peers: tuple[ModelPeer, ...]
    avalanche: bool = False

    @cached_property
    def table(self) -> list[str]:
        return server_map(self.peers)

    def pick(self, address: str) -> Prediction:
        if not self.table:
            return Prediction.any_of(set())
        return Prediction.one(self.table[source_hash(address, self.avalanche) % len(self.table)])


@dataclass(frozen=True)
class SourceRing:
    """``balance source`` with ``hash-type consistent``; ``ids`` are the servers' ids (puid) by name."""

    peers: tuple[ModelPeer, ...]
    ids: tuple[int, ...]
    avalanche: bool = False

    @cached_property
    def ring(self) -> tuple[list[int], list[str]]:
        tier = {peer.name for peer in usable_tier(self.peers)}
        nodes = sorted(
            (full_hash(server_id * NODE_RANGE + node), index, peer.name)
            for index, (peer, server_id) in enumerate(zip(self.peers, self.ids, strict=True))
            if peer.name in tier
            for node in range(peer.weight * NODES_PER_WEIGHT)
        )
        return [key for key, _, _ in nodes], [name for _, _, name in nodes]

    def pick(self, address: str) -> Prediction:
        keys, names = self.ring
        if not keys:
            return Prediction.any_of(set())
        value = source_hash(address, self.avalanche)
        after = bisect.bisect_left(keys, value) % len(keys)  # eb32_lookup_ge, wrapping to the first
        before = (after - 1) % len(keys)
        # Distances on the ring of 2^32, as unsigned 32-bit differences.
        to_before, to_after = (value - keys[before]) & MASK, (keys[after] - value) & MASK
        return Prediction.one(names[before] if to_before <= to_after else names[after])
