"""The harness's client-side ``hash`` policy (``harness.balancers.client.policies.ClientHash``):
a target of weight w owns w slots, the client's address and the try's number pick a slot by
crc32, and an unusable target sends the client to its next try."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from harness.models.peers import ModelPeer, Prediction

REHASHES = 20


def client_hash(client: str, peers: Sequence[ModelPeer]) -> Prediction:
    slots = [peer for peer in peers for _ in range(peer.weight)]
    if not slots:
        return Prediction.any_of(set())
    for attempt in range(REHASHES):
        peer = slots[zlib.crc32(f"{client}#{attempt}".encode()) % len(slots)]
        if not peer.down:
            return Prediction.one(peer.name)
    return Prediction.any_of({peer.name for peer in peers if not peer.down})
