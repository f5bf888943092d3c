"""Each instance's health as its balancer sees it now, for the live console.

HAProxy says it itself (its stats socket). A client-side balancer keeps the count in the
clients. nginx keeps its passive-check state to itself, so it is derived from its access
log, read as it grows, with the config's own ``max_fails`` and ``fail_timeout``: an
address with ``max_fails`` failures, the last less than ``fail_timeout`` ago and no
success since, is out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.balancers.base import Balancer
from harness.balancers.client.balancer import ClientSideBalancer
from harness.balancers.haproxy.balancer import HaproxyBalancer
from harness.balancers.nginx.access_log import COLUMNS, _split, is_failure
from harness.balancers.nginx.balancer import NginxBalancer
from harness.balancers.nginx.health import passive_checks
from harness.runtimes.base import Instance

HealthView = Callable[[Sequence[Instance]], dict[str, str]]
_ADDR, _STATUS, _MSEC = COLUMNS.index("upstream_addr"), COLUMNS.index("upstream_status"), COLUMNS.index("msec")


@dataclass
class _Address:
    failures: int = 0
    last_failure: float = 0.0
    last_success: float = 0.0


class NginxLogHealth:
    """nginx's passive view, rebuilt from the lines its access log gained since the last look."""

    def __init__(self, log: Path, max_fails: int, fail_timeout: float) -> None:
        self.log = log
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self._offset = 0
        self._addresses: dict[str, _Address] = {}

    def _read(self) -> None:
        if not self.log.exists():
            return
        with self.log.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) != len(COLUMNS):
                continue
            moment = float(fields[_MSEC])
            for address, status in zip(_split(fields[_ADDR]), _split(fields[_STATUS]), strict=False):
                state = self._addresses.setdefault(address, _Address())
                if is_failure(status):
                    # A failure after a quiet fail_timeout starts a new count, as nginx's does.
                    if moment - state.last_failure > self.fail_timeout:
                        state.failures = 0
                    state.failures += 1
                    state.last_failure = moment
                else:
                    state.last_success = max(state.last_success, moment)

    def __call__(self, instances: Sequence[Instance]) -> dict[str, str]:
        self._read()
        now = time.time()
        states = {}
        for instance in instances:
            state = self._addresses.get(instance.address, _Address())
            out = (
                self.max_fails > 0
                and state.failures >= self.max_fails
                and state.last_success < state.last_failure
                and now - state.last_failure <= self.fail_timeout
            )
            left = self.fail_timeout - (now - state.last_failure)
            states[instance.name] = f"out (passive, back in {left:.0f} s)" if out else "in rotation"
        return states


def health_view(balancer: Balancer) -> HealthView:
    """How the console asks ``balancer`` which instances it sends to."""
    if isinstance(balancer, HaproxyBalancer):
        return lambda instances: balancer.server_states()
    if isinstance(balancer, ClientSideBalancer):

        def client_side(instances: Sequence[Instance]) -> dict[str, str]:
            out = set(balancer.out_of_rotation())
            return {i.name: "out (in the clients)" if i.name in out else "in rotation" for i in instances}

        return client_side
    if isinstance(balancer, NginxBalancer):
        checks = passive_checks(balancer.config)
        return NginxLogHealth(balancer.access_log, checks.max_fails, checks.fail_timeout)
    return lambda instances: {}
