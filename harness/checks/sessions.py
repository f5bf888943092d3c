"""How long-lived sessions spread over instances, counted on the instances themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from harness.checks.verdict import Verdict, not_applicable

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


SESSIONS_BALANCED = "open sessions per instance stay within one of even"


@dataclass(frozen=True)
class Snapshot:
    """Open sessions per instance at one instant (a consistent pair of readings), and the users' count."""

    at: float  # seconds after the load began
    open: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.open.values())

    @property
    def spread(self) -> int:
        return max(self.open.values()) - min(self.open.values()) if self.open else 0

    def allowed(self, users: int) -> int:
        """least_conn's bound: one with every user in a session, one more for each user between two
        (a session that ended leaves its instance one short until its user opens the next)."""
        return 1 + max(0, users - self.total)

    def shown(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in self.open.items())


def consistent_snapshots(
    samples: pd.DataFrame, load_start: float, after: float = 0.0, until: float = float("inf")
) -> list[Snapshot]:
    """The sampler's consistent snapshots from ``after`` to ``until`` seconds into the load, in time order."""
    if samples.empty:
        return []
    since = samples["time"] - load_start
    kept = samples[samples["consistent"].astype(bool) & (since >= after) & (since <= until)]
    return [
        Snapshot(
            float(group["time"].iloc[0]) - load_start,
            dict(zip(group["instance"], group["open"].astype(int), strict=True)),
        )
        for _, group in kept.groupby("time", sort=True)
    ]


def session_balance(snapshots: list[Snapshot], users: int, kind: str, check: str = SESSIONS_BALANCED) -> Verdict:
    """Judges every snapshot against least_conn's bound; the numbers say how uneven the sessions were."""
    if not snapshots:
        return not_applicable(
            check,
            "no consistent snapshot of the instances' sessions after every user started: sessions started "
            "or ended between every two readings, or the load was too short; lengthen --session-hold or --duration",
        )
    beyond = [snapshot for snapshot in snapshots if snapshot.spread > snapshot.allowed(users)]
    worst = max(snapshots, key=lambda snapshot: (snapshot.spread - snapshot.allowed(users), snapshot.spread))
    mean = sum(snapshot.spread for snapshot in snapshots) / len(snapshots)
    summary = (
        f"{len(beyond)} of {len(snapshots)} snapshots of open {kind} sessions beyond one of even "
        f"(plus one per user between sessions); most minus fewest {mean:.2f} on average, "
        f"worst {worst.spread} at {worst.at:.1f} s ({worst.shown()}, {worst.total} of {users} users in a session)"
    )
    observed = {
        "snapshots": len(snapshots), "beyond": len(beyond), "mean_spread": round(mean, 3),
        "worst": {"at_s": round(worst.at, 3), "open": worst.open, "spread": worst.spread},
    }  # fmt: skip
    return Verdict(check, not beyond, summary, observed, {"spread_at_most": "1 + users between sessions"})


@dataclass(frozen=True)
class Slow:
    """An instance made slow from ``since`` to ``until`` seconds into the load."""

    instance: str
    since: float
    until: float


def balance_while_slow(
    snapshots: list[Snapshot], opened: pd.DataFrame, slow: Slow, users: int, kind: str, load_start: float
) -> Verdict:
    """least_conn's bound while one instance is slow: its sessions last longer, and a balancer that
    counts them sends it fewer; one that takes turns piles them up there (the seed's round robin
    "may overload slower instances"). The sessions begun meanwhile (``opened``: their start
    ``time`` and ``instance``), per instance, beside it."""
    during = [s for s in snapshots if slow.since <= s.at <= slow.until]
    check = f"{SESSIONS_BALANCED} while {slow.instance} is slow"
    verdict = session_balance(during, users, kind, check)
    since, until = load_start + slow.since, load_start + slow.until
    begun = opened[(opened["time"] >= since) & (opened["time"] < until) & (opened["instance"] != "")]
    counts = begun["instance"].value_counts().sort_index()
    shown = ", ".join(
        f"{name} {count}" + (" (slow)" if name == slow.instance else "") for name, count in counts.items()
    )
    observed = {**verdict.observed, "begun": {str(k): int(v) for k, v in counts.items()}}
    return replace(
        verdict, summary=f"{verdict.summary}; sessions begun meanwhile: {shown or 'none'}", observed=observed
    )
