"""An instance lost under sessions: what its sessions saw, and where the clients went next."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.checks.verdict import Verdict


@dataclass(frozen=True)
class Lost:
    """An instance killed or stopped under a session load, in seconds after the load began."""

    instance: str
    signalled: float  # the signal was sent
    gone: float  # the process was seen gone
    until: float  # it was started again, or the load ended


def _spans(opened: pd.DataFrame, load_start: float) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Each session's start and end, seconds after the load began, and whether it failed."""
    start = opened["time"] - load_start
    return start, start + opened["latency_ms"] / 1000, opened["error"].fillna("").astype(str) != ""


def sessions_around_a_lost_instance(opened: pd.DataFrame, lost: Lost, load_start: float, kind: str) -> Verdict:
    """The sessions the instance held end when it goes (how soon the clients notice is shown);
    the sessions opened while it is gone reach the other instances and are served. ``opened``:
    one row per session (``time`` its start, ``latency_ms`` its length, ``instance``, ``error``)."""
    check = f"{kind} sessions opened while {lost.instance} was gone reach the other instances"
    start, end, failed = _spans(opened, load_start)
    held = (opened["instance"] == lost.instance) & (start < lost.signalled) & (end > lost.signalled)
    later = (start > lost.gone) & (start < lost.until)
    on_lost = int((later & (opened["instance"] == lost.instance)).sum())
    later_failed = opened[later & failed]
    noticed = (end[held & failed] - lost.signalled).sort_values()
    seen = (
        f"of the {int(held.sum())} it held, {len(noticed)} ended early, noticed by their clients "
        f"{noticed.median() * 1000:.0f} ms after the signal (median; the last {noticed.max() * 1000:.0f} ms)"
        if len(noticed)
        else f"it held {int(held.sum())}, none ended early"
    )
    summary = (
        f"{int(later.sum())} sessions opened from {lost.gone:.1f} s to {lost.until:.1f} s: {on_lost} on "
        f"{lost.instance}, {len(later_failed)} failed (expected 0 and 0); {seen}"
        + (f"; first failure: {later_failed['error'].iloc[0]}" if len(later_failed) else "")
    )
    observed = {
        "opened_while_gone": int(later.sum()), "on_lost": on_lost, "failed": len(later_failed),
        "held": int(held.sum()), "held_ended_early": len(noticed),
        "noticed_median_s": round(float(noticed.median()), 3) if len(noticed) else None,
    }  # fmt: skip
    passed = bool(later.sum()) and not on_lost and not len(later_failed)
    return Verdict(check, passed, summary, observed, {"on_lost": 0, "failed": 0})


def sessions_around_a_hung_instance(opened: pd.DataFrame, hung: Lost, load_start: float, kind: str) -> Verdict:
    """A hung instance (SIGSTOP) still accepts connections, so neither the balancer nor the
    clients learn of it at once: the sessions it held stall until it runs again (or until
    their client's read timeout), and a new session sent to it waits as long for its opening
    answer. The sessions opened on the other instances meanwhile must be served. ``opened``
    as for :func:`sessions_around_a_lost_instance`; ``hung.until`` is when it ran again."""
    check = f"{kind} sessions opened while {hung.instance} hung are served by the others"
    start, end, failed = _spans(opened, load_start)
    on_hung = opened["instance"] == hung.instance
    answered_by_other = (opened["instance"] != hung.instance) & (opened["instance"].fillna("") != "")
    held = on_hung & (start < hung.signalled) & (end > hung.signalled)
    later = (start > hung.gone) & (start < hung.until)
    waited = later & on_hung
    elsewhere = later & answered_by_other
    failed_elsewhere = opened[elsewhere & failed]
    unanswered = int((later & failed & ~on_hung & ~answered_by_other).sum())
    stalled = (end[held] - hung.signalled).sort_values()
    held_seen = (
        f"the {len(stalled)} it held stalled and ended {stalled.median():.1f} s after the signal (median; "
        f"it ran again after {hung.until - hung.signalled:.1f} s), {int((held & failed).sum())} cut by their clients"
        if len(stalled)
        else "it held none"
    )
    summary = (
        f"{int(later.sum())} sessions opened from {hung.gone:.1f} s to {hung.until:.1f} s: {int(elsewhere.sum())} "
        f"on the others, {len(failed_elsewhere)} of them failed (expected 0); {int(waited.sum())} sent to "
        f"{hung.instance} waited for it to run again, {unanswered} got no answer; {held_seen}"
        + (f"; first failure: {failed_elsewhere['error'].iloc[0]}" if len(failed_elsewhere) else "")
    )
    observed = {
        "opened_while_hung": int(later.sum()), "on_others": int(elsewhere.sum()),
        "failed_on_others": len(failed_elsewhere), "waited_on_hung": int(waited.sum()), "unanswered": unanswered,
        "held": len(stalled), "held_stalled_median_s": round(float(stalled.median()), 3) if len(stalled) else None,
    }  # fmt: skip
    passed = bool(elsewhere.sum()) and not len(failed_elsewhere)
    return Verdict(check, passed, summary, observed, {"failed_on_others": 0})
