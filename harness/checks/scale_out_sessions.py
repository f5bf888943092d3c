"""After a scale-out under sessions: do the new sessions go to the new instances until they are even?"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.checks.sessions import Snapshot
from harness.checks.verdict import Verdict

# The clients' view of each instance's open sessions differs from the balancer's by the sessions
# opening or closing at that instant; one in flight either way is not a wrong pick.
IN_FLIGHT = 1


@dataclass(frozen=True)
class ScaleOut:
    """A scale-out under a session load: when the balancer took the new instances, and which."""

    at: float  # seconds after the load began: the balancer was told of the new instances
    new: tuple[str, ...]
    size: int  # instances after it
    names: tuple[str, ...] = ()  # every instance after it


@dataclass(frozen=True)
class Pick:
    """One session opened after the scale-out, and the open sessions each instance held just before."""

    at: float  # seconds after the load began
    instance: str
    held: dict[str, int]

    @property
    def beyond_fewest(self) -> bool:
        return self.held.get(self.instance, 0) > min(self.held.values()) + IN_FLIGHT


def new_sessions_to_new_instances(
    opened: pd.DataFrame, snapshots: list[Snapshot], scale: ScaleOut, users: int, load_start: float
) -> Verdict:
    """least_conn's claim after a scale-out, session by session: from the first session on a new
    instance until every new instance holds its even share (``users`` over ``scale.size``), no
    session opens on an instance holding more than the fewest (one in flight allowed). A balancer
    that lost its counts in the change (or never kept them) opens them on the old instances too.

    Counted from the clients' records (``opened``: ``time`` a session's start, ``latency_ms`` its
    length, ``instance``), exact to the millisecond, unlike the instances' sampled snapshots, which
    give the time to even shown beside it."""
    check = f"after the scale-out to {scale.size}, new sessions go to {', '.join(scale.new)} until even"
    names = ", ".join(scale.new)
    expected = {"beyond_fewest": 0, "in_flight_allowed": IN_FLIGHT}
    sessions = _spans(opened, load_start)
    reached = sessions[(sessions["start"] >= scale.at) & sessions["instance"].isin(scale.new)]
    if reached.empty:
        summary = f"no session reached {names} after the scale-out at {scale.at:.1f} s"
        return Verdict(check, False, summary, {"opened": 0, "on_new": 0}, expected)
    # From the first session on a new instance: the balancer had it then (a reload or a runtime
    # change takes effect some time after the harness asked for it).
    start = float(reached["start"].min())
    share = users // scale.size
    picks = _picks_until_even(sessions, start, scale, share)
    on_new = sum(pick.instance in scale.new for pick in picks)
    beyond = [pick for pick in picks if pick.beyond_fewest]
    later = [s for s in snapshots if s.at >= start and set(scale.new) <= set(s.open)]
    even = next((s for s in later if s.spread <= s.allowed(users)), None)
    took = None if even is None else even.at - start
    summary = (
        f"{len(beyond)} of the {len(picks)} sessions opened from the first on {names} at {start:.1f} s (the "
        f"scale-out began at {scale.at:.1f} s) until it held {share} went to an instance with more than the fewest "
        f"open sessions plus {IN_FLIGHT} (expected 0); {on_new} went to {names}"
        + (f"; worst: {_shown(max(beyond, key=_excess))}" if beyond else "")
        + (f"; the instances were even {took:.1f} s after it" if took is not None else "; never even before the end")
    )
    observed = {
        "opened": len(picks), "on_new": on_new, "beyond_fewest": len(beyond),
        "time_to_even_s": None if took is None else round(took, 3),
    }  # fmt: skip
    return Verdict(check, not beyond, summary, observed, expected)


def _spans(opened: pd.DataFrame, load_start: float) -> pd.DataFrame:
    start = opened["time"] - load_start
    end = start + opened["latency_ms"].fillna(0) / 1000
    return pd.DataFrame({"start": start, "end": end, "instance": opened["instance"]}).sort_values("start")


def _picks_until_even(sessions: pd.DataFrame, start: float, scale: ScaleOut, share: int) -> list[Pick]:
    names = list(dict.fromkeys([*scale.names, *scale.new]))
    picks = []
    later = sessions[sessions["start"] >= start]
    for at, instance in zip(later["start"].astype(float), later["instance"].astype(str), strict=True):
        before = sessions[(sessions["start"] < at) & (sessions["end"] > at)]
        held = {name: int((before["instance"] == name).sum()) for name in names}
        picks.append(Pick(at, instance, held))
        if all(held[name] + (instance == name) >= share for name in scale.new):
            break
    return picks


def _excess(pick: Pick) -> int:
    return pick.held.get(pick.instance, 0) - min(pick.held.values())


def _shown(pick: Pick) -> str:
    held = ", ".join(f"{name} {count}" for name, count in pick.held.items())
    return f"at {pick.at:.1f} s to {pick.instance} while {held}"
