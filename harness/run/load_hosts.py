"""The simulated load hosts of a run (``--load-hosts``): the run in a namespace of its own, and
the hosts' namespaces wired to it, for as long as the run lasts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from harness.load.hosts import FRONT, SimulatedHosts
from harness.netns import NetworkNamespace
from harness.run.context import RunContext


@contextlib.contextmanager
def load_hosts_of(context: RunContext) -> Iterator[SimulatedHosts | None]:
    """The run's load hosts, or None when its load comes from this process."""
    count = context.spec.load_hosts
    if not count:
        yield None
        return
    with NetworkNamespace() as run_namespace, SimulatedHosts(count, run_namespace.name) as hosts:
        context.journal.record(
            "load hosts", front=FRONT,
            hosts=[{"name": host.name, "address": host.address, "clients": str(host.client_block)}
                   for host in hosts.hosts],
        )  # fmt: skip
        yield hosts
