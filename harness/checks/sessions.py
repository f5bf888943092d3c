"""How long-lived sessions spread over instances, counted on the instances themselves."""

from __future__ import annotations

from collections.abc import Mapping

from harness.checks.verdict import Verdict

SESSIONS_EVEN = "open sessions per instance within one of even"


def sessions_within_one(open_sessions: Mapping[str, int], kind: str = "WebSocket") -> Verdict:
    """least_conn's claim for long-lived work: with sessions opened one after another, each goes
    to an instance with the fewest open, so no instance holds two more than another."""
    counts = dict(open_sessions)
    total = sum(counts.values())
    spread = max(counts.values()) - min(counts.values()) if counts else 0
    shown = ", ".join(f"{name} {count}" for name, count in counts.items())
    summary = f"{total} open {kind} sessions: {shown} (most minus fewest {spread}, expected at most 1)"
    return Verdict(SESSIONS_EVEN, bool(counts) and spread <= 1, summary, {"per_instance": counts, "spread": spread},
                   {"spread_at_most": 1})  # fmt: skip
