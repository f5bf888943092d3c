"""A graceful reload under sessions: do the sessions open at it survive, and how long do the old workers live?"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.checks.verdict import Verdict


@dataclass(frozen=True)
class Reload:
    """One reload under a session load, in seconds after the load began."""

    at: float  # the reload signal
    old_gone_after: float | None  # from the signal until the last old worker exited; None: never seen gone


def sessions_survive_reload(opened: pd.DataFrame, reload: Reload, load_start: float, kind: str) -> Verdict:
    """A graceful reload lets the old workers finish what they hold: every session open at the
    signal ends as long as it asked (the users mark a session that ended early as cut), and the
    old workers live until the last of them ends. ``opened``: one row per session (``time`` its
    start, ``latency_ms`` its length, ``error``)."""
    check = f"{kind} sessions open at the reload at {reload.at:.1f} s survive it"
    start = opened["time"] - load_start
    end = start + opened["latency_ms"] / 1000
    open_at = opened[(start < reload.at) & (end > reload.at)]
    cut = open_at[open_at["error"].fillna("").astype(str) != ""]
    survived = len(open_at) - len(cut)
    last_end = float((end[open_at.index]).max() - reload.at) if len(open_at) else 0.0
    lived = (
        f"the old workers exited {reload.old_gone_after:.1f} s after the signal"
        if reload.old_gone_after is not None
        else "the old workers were still there when the reload gave up waiting"
    )
    summary = (
        f"{survived} of {len(open_at)} {kind} sessions open at the reload ended as long as they asked, "
        f"{len(cut)} cut (expected 0); {lived}, the last session open at it ended or was cut {last_end:.1f} s after it"
        + (f"; first cut: {cut['error'].iloc[0]}" if len(cut) else "")
    )
    observed = {
        "open_at_reload": len(open_at), "survived": survived, "cut": len(cut),
        "old_workers_lived_s": None if reload.old_gone_after is None else round(reload.old_gone_after, 3),
        "last_session_ended_s": round(last_end, 3),
    }  # fmt: skip
    if not len(open_at):
        summary = f"no {kind} session was open at the reload at {reload.at:.1f} s: nothing to survive it"
    return Verdict(check, bool(len(open_at)) and not len(cut), summary, observed, {"cut": 0})


NEW_WORKERS_BY_S = 1.0  # after the signal the new workers take every new connection; the old close their sockets


def no_new_session_on_old_workers(
    served: pd.DataFrame, signalled: float, old_workers: frozenset[int], load_start: float, kind: str
) -> Verdict:
    """After a reload the old workers only finish what they hold: no session that began
    ``NEW_WORKERS_BY_S`` after the signal is served by one of them. ``served``: the balancer's
    log of sessions, ``start`` (wall clock) and ``pid`` of the worker that served each."""
    at = signalled - load_start
    check = f"no {kind} session opened after the reload at {at:.1f} s goes to an old worker"
    later = served[served["start"] >= signalled + NEW_WORKERS_BY_S]
    on_old = later[later["pid"].isin(old_workers)]
    summary = (
        f"{len(on_old)} of {len(later)} sessions the balancer logged as begun {NEW_WORKERS_BY_S:g} s or more after "
        f"the signal were served by an old worker (pids {', '.join(str(pid) for pid in sorted(old_workers))}; "
        "expected 0)"
    )
    if later.empty:
        summary = f"the balancer logged no {kind} session begun {NEW_WORKERS_BY_S:g} s or more after the reload"
    observed = {"after_reload": len(later), "on_old_workers": len(on_old)}
    return Verdict(check, not later.empty and on_old.empty, summary, observed, {"on_old_workers": 0})
