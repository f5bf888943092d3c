"""least_conn: while one instance holds a long request, new short requests avoid it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from harness.checks.verdict import Verdict, not_applicable

AVOIDS_BUSY = "short requests avoid the busy instance"


class Answer(Protocol):
    @property
    def instance(self) -> str: ...


class BusyProbe(Protocol):
    """What the probe recorded (``harness.load.probes.LeastConnProbe``): checks judge, the load layer sends."""

    @property
    def busy_instance(self) -> str: ...

    @property
    def long_response(self) -> object | None: ...

    @property
    def shorts_while_busy(self) -> Sequence[Answer]: ...


def avoids_busy_instance(probe: BusyProbe, check: str = AVOIDS_BUSY) -> Verdict:
    """No short request sent while the long one was in flight went to the busy instance.

    Exact with one nginx worker or a shared zone: least_conn sees the busy instance's
    connection and every other instance is idle between sequential short requests.
    """
    during = probe.shorts_while_busy
    hits = sum(1 for response in during if response.instance == probe.busy_instance)
    observed = {
        "busy_instance": probe.busy_instance,
        "short_requests_while_busy": len(during),
        "sent_to_busy_instance": hits,
    }
    expected = {"sent_to_busy_instance": 0}
    if probe.long_response is None:
        return Verdict(check, False, "the long request did not finish", observed, expected)
    if not during:
        return Verdict(check, False, "no short request completed while the long one was in flight", observed, expected)
    passed = hits == 0
    summary = (
        f"{hits} of {len(during)} short requests went to {probe.busy_instance}, which held a long request (expected 0)"
    )
    return Verdict(check, passed, summary, observed, expected)


def busy_not_seen(workers: int) -> Verdict:
    """Several workers without a shared zone: a worker sends to the busy instance it does not know is busy."""
    return not_applicable(
        AVOIDS_BUSY,
        f"{workers} nginx workers without a shared zone each count only their own connections; "
        "use --workers 1 or --zone",
    )
