"""What a fault shows about the algorithm itself: least_conn under a slow instance, ip_hash
when an instance dies, POSTs in flight when one is killed (no balancer resends them)."""

from __future__ import annotations

from harness.checks.fault_rows import FailoverRow, FaultObservation
from harness.checks.verdict import Verdict


def least_conn_avoids_slow(observation: FaultObservation, label: str) -> Verdict:
    check = f"{label}: least_conn sends less to the slow instance"
    served = observation.clients[observation.clients["instance"] != ""]
    instances = max(served["instance"].nunique(), 1)
    share = float((served["instance"] == observation.record.instance).mean()) if not served.empty else 0.0
    even = 1.0 / instances
    return Verdict(
        check,
        not served.empty and share <= even / 2,
        f"{observation.record.instance} served {share:.1%} of requests while slow "
        f"(expected at most half the even share {even:.1%})",
        {"share": share},
        {"share_at_most": even / 2},
    )


def ip_hash_remaps_only_the_dead_instances_clients(observation: FaultObservation, label: str) -> Verdict:
    """Clients of the dead instance move while it is out and come back after; no other client moves."""
    check = f"{label}: ip_hash moves only the dead instance's clients, and they come back"
    record = observation.record
    served = observation.all_clients[observation.all_clients["instance"] != ""]
    start = record.injected_at or 0.0
    before = served[served["time"] < start].groupby("client")["instance"].agg(lambda s: s.mode().iloc[0])
    during = served[(served["time"] > start) & (served["time"] < observation.rollback)]
    after = served[served["time"] > observation.effect_end + 0.5]
    own = set(before[before == record.instance].index)
    others = set(before.index) - own
    moved_others = sorted(
        str(client)
        for client, group in during.groupby("client")
        if client in others and set(group["instance"]) - {before[client]}
    )
    stayed_own = [c for c, g in during.groupby("client") if c in own and record.instance in set(g["instance"])]
    back_after = {c for c, g in after.groupby("client") if c in own and set(g["instance"]) == {record.instance}}
    observed = {
        "clients": len(before),
        "clients_of_dead_instance": len(own),
        "remapped_share": round(len(own) / max(len(before), 1), 3),
        "other_clients_moved": moved_others,
        "came_back": len(back_after),
    }
    came_back_expected = observation.effect_end < (served["time"].max() if not served.empty else 0.0) - 0.5
    passed = bool(own) and not moved_others and not stayed_own and (not came_back_expected or back_after == own)
    summary = (
        f"{len(own)} of {len(before)} clients were on {record.instance} ({observed['remapped_share']:.0%} remapped); "
        f"other clients moved: {moved_others or 'none'}; "
        f"came back after recovery: {len(back_after)} of {len(own)}"
        + ("" if came_back_expected else " (the run ended before the instance was back)")
    )
    return Verdict(check, passed, summary, observed, {"other_clients_moved": [], "came_back": len(own)})


def post_in_flight_fails(row: FailoverRow, observation: FaultObservation, label: str) -> Verdict:
    """POSTs on the instance when it died fail: nginx does not resend a non-idempotent request.

    A POST whose connection was refused had sent nothing and is retried, so only the POSTs
    that were on the instance at the fault may fail, and at least one does when requests
    are long enough to be in flight.
    """
    check = f"{label}: only POSTs in flight at the fault fail"
    # The process died somewhere between the start of the injection and its return.
    start = observation.record.injected_at or 0.0
    died_by = observation.record.inject_returned_at or start
    attempts = observation.attempts
    in_flight = int(((attempts["start"] <= died_by) & (attempts["end"] >= start)).sum())
    observed = {"client_errors": row.client_errors, "by_status": row.errors_by_status, "in_flight_at_fault": in_flight}
    # A proxy answers 502 or 504 for them; a client-side balancer's caller sees the error itself (0).
    passed = 0 < row.client_errors <= in_flight and set(row.errors_by_status) <= {"0", "502", "504"}
    return Verdict(
        check,
        passed,
        f"{row.client_errors} POSTs failed {row.errors_by_status}; {in_flight} were on {row.instance} at the fault "
        f"(expected 1 to {in_flight}); {row.retried_elsewhere} refused attempts were retried elsewhere",
        observed,
        {"client_errors": [1, in_flight]},
    )
