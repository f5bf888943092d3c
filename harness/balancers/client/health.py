"""A client's passive view of each instance's health: nginx's max_fails / fail_timeout rule.

Kept to nginx's own bookkeeping (``fails``, ``accessed``, ``checked`` per peer) so that a
client-side run and an nginx run answer the same failover checks: an instance is out
once ``max_fails`` failures have been counted and the last of them is less than
``fail_timeout`` old; after that one request may try it again, and its success clears the
count while a failure takes it out for another ``fail_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Peer:
    fails: int = 0
    accessed: float = 0.0  # the last failure
    checked: float = 0.0  # the last failure, or the first pick after a quiet fail_timeout


class PassiveHealth:
    def __init__(self, max_fails: int, fail_timeout: float) -> None:
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self._peers: dict[str, _Peer] = {}

    def _peer(self, name: str) -> _Peer:
        return self._peers.setdefault(name, _Peer())

    def usable(self, name: str, now: float) -> bool:
        """max_fails 0 turns the checks off: every instance is always usable."""
        peer = self._peer(name)
        return not (self.max_fails and peer.fails >= self.max_fails and now - peer.checked <= self.fail_timeout)

    def picked(self, name: str, now: float) -> None:
        peer = self._peer(name)
        if now - peer.checked > self.fail_timeout:
            peer.checked = now

    def failed(self, name: str, now: float) -> None:
        peer = self._peer(name)
        peer.fails += 1
        peer.accessed = peer.checked = now

    def succeeded(self, name: str) -> None:
        peer = self._peer(name)
        if peer.accessed < peer.checked:
            peer.fails = 0

    def out(self, now: float) -> list[str]:
        """The instances a client would not pick at ``now``."""
        return [name for name in self._peers if not self.usable(name, now)]
