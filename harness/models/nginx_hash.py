"""nginx's ip_hash, ``hash KEY`` and ``hash KEY consistent``, computed as nginx computes them.

Each walks from the key's first choice to the next while the chosen peer is unusable (down, at
max_conns, taken out after failures) and, after 20 such tries, falls back to round robin: the
model then says "any usable peer". Backups take no part: nginx refuses ``backup`` beside ip_hash
and hash (their upstreams do not accept the flag).
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

from harness.models.peers import ModelPeer, Prediction, primaries, usable

MAX_TRIES = 20  # nginx's "tries > 20": then round robin
POINTS_PER_WEIGHT = 160  # ngx_http_upstream_update_chash: 160 ring points per unit of weight


def _fallback(peers: Sequence[ModelPeer], conns: Mapping[str, int] | None, failed: frozenset[str]) -> Prediction:
    return Prediction.any_of({peer.name for peer in peers if usable(peer, conns, failed)})


def _by_weight(peers: Sequence[ModelPeer], w: int) -> ModelPeer:
    """The peer whose weight range holds ``w`` (nginx's ``while (w >= peer->weight)`` walk)."""
    for peer in peers:
        if w < peer.weight:
            return peer
        w -= peer.weight
    raise ValueError("w beyond the total weight")


def ip_hash_octets(address: str) -> tuple[int, ...]:
    """The bytes ip_hash hashes: the first three octets of an IPv4 address, all 16 of an IPv6 one."""
    if ":" in address:
        import ipaddress

        return tuple(ipaddress.IPv6Address(address).packed)
    return tuple(int(part) for part in address.split(".")[:3])


def ip_hash(
    address: str,
    peers: Sequence[ModelPeer],
    conns: Mapping[str, int] | None = None,
    failed: frozenset[str] = frozenset(),
) -> Prediction:
    """ngx_http_upstream_get_ip_hash_peer: ``hash = (hash * 113 + octet) % 6271`` over the
    octets from 89, ``w = hash % total_weight`` walked through the weights; an unusable pick
    hashes the octets again from the last value."""
    group = primaries(tuple(peers))
    if len(group) == 1:
        return _fallback(group, conns, failed)
    total = sum(peer.weight for peer in group)
    octets = ip_hash_octets(address)
    value = 89
    for _ in range(MAX_TRIES + 1):
        for octet in octets:
            value = (value * 113 + octet) % 6271
        peer = _by_weight(group, value % total)
        if usable(peer, conns, failed):
            return Prediction.one(peer.name)
    return _fallback(group, conns, failed)


def _key_hash(key: bytes, rehash: int) -> int:
    """Cache::Memcached's hash: ``(crc32([REHASH] KEY) >> 16) & 0x7fff``, REHASH left out at first."""
    prefix = str(rehash).encode() if rehash else b""
    return (zlib.crc32(prefix + key) >> 16) & 0x7FFF


def hash_key(
    key: str,
    peers: Sequence[ModelPeer],
    conns: Mapping[str, int] | None = None,
    failed: frozenset[str] = frozenset(),
) -> Prediction:
    """ngx_http_upstream_get_hash_peer (``hash KEY`` without consistent): the running sum of
    each try's key hash, modulo the total weight, walked through the weights. An empty key
    falls back to round robin."""
    group = primaries(tuple(peers))
    if len(group) == 1 or not key:
        return _fallback(group, conns, failed)
    total = sum(peer.weight for peer in group)
    data = key.encode()
    value = 0
    for rehash in range(MAX_TRIES + 1):
        value += _key_hash(data, rehash)
        peer = _by_weight(group, value % total)
        if usable(peer, conns, failed):
            return Prediction.one(peer.name)
    return _fallback(group, conns, failed)


def _host_and_port(server: str) -> tuple[bytes, bytes]:
    """How ngx_http_upstream_update_chash splits a server as written: ``unix:PATH`` is all host;
    otherwise the digits after the last colon are the port."""
    if server[:5].lower() == "unix:":
        return server[5:].encode(), b""
    host, colon, port = server.rpartition(":")
    if colon and port.isdigit():
        return host.encode(), port.encode()
    return server.encode(), b""


@lru_cache(maxsize=64)
def _ring(servers: tuple[tuple[str, int], ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    points: list[tuple[int, str]] = []
    for server, weight in servers:
        host, port = _host_and_port(server)
        base = host + b"\0" + port
        previous = 0
        for _ in range(weight * POINTS_PER_WEIGHT):
            # crc32(HOST \0 PORT PREV_HASH), PREV_HASH as the 4 bytes of the previous point in memory
            # order (little-endian on the machines nginx runs on here).
            previous = zlib.crc32(base + struct.pack("<I", previous))
            points.append((previous, server))
    points.sort(key=lambda point: point[0])
    hashes: list[int] = []
    names: list[str] = []
    for value, server in points:
        if hashes and hashes[-1] == value:
            continue  # equal points are kept once, the first after sorting
        hashes.append(value)
        names.append(server)
    return tuple(hashes), tuple(names)


class ConsistentHashRing:
    """``hash KEY consistent`` (ketama): each peer's points on a ring of 2^32, the key's crc32
    finding the first point at or after it (ngx_http_upstream_find_chash_point), and the next
    point while that point's peer is unusable (ngx_http_upstream_get_chash_peer).

    Peers are named as written in the config nginx runs, which is what the points hash.
    """

    def __init__(self, peers: Sequence[ModelPeer]) -> None:
        self.peers = primaries(tuple(peers))
        self.hashes, self.servers = _ring(tuple((peer.name, peer.weight) for peer in self.peers))
        self._by_name = {peer.name: peer for peer in self.peers}

    def first_point(self, key: str) -> int:
        return bisect.bisect_left(self.hashes, zlib.crc32(key.encode()))

    def pick(
        self, key: str, conns: Mapping[str, int] | None = None, failed: frozenset[str] = frozenset()
    ) -> Prediction:
        if len(self.peers) < 2 or not key:
            return _fallback(self.peers, conns, failed)
        point = self.first_point(key)
        for tries in range(MAX_TRIES + 1):
            peer = self._by_name[self.servers[(point + tries) % len(self.hashes)]]
            if usable(peer, conns, failed):
                return Prediction.one(peer.name)
        return _fallback(self.peers, conns, failed)
