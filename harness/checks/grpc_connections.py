"""Where the calls of one HTTP/2 connection go: over the instances, or all to one.

gRPC multiplexes every call of a client over one long-lived HTTP/2 connection. A balancer
that terminates HTTP/2 and balances its streams (nginx ``grpc_pass``, HAProxy ``proto h2``)
picks an instance per call; one that balances connections (kube-proxy, any L4 path) picks
once per connection, and every call of that connection follows its first. Both checks read
the clients' records, in which each call names its connection and the instance from its
trailers.
"""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import Verdict

MIN_CALLS = 20  # calls of a connection under load before its spread is reported


def calls_by_connection(frame: pd.DataFrame) -> pd.DataFrame:
    """Per connection: its ``calls`` answered by an instance, and how many ``instances`` answered them."""
    served = frame[(frame["connection"] != "") & (frame["instance"] != "")]
    per: pd.DataFrame = served.groupby("connection")["instance"].agg(["count", "nunique"])
    return per.rename(columns={"count": "calls", "nunique": "instances"}).astype(int)


def _histogram(per: pd.DataFrame) -> dict[int, int]:
    counts = per["instances"].value_counts().sort_index()
    return {int(str(k)): int(v) for k, v in counts.items()}


def _reached(picked: list[str], reached: list[str], instances: int) -> str:
    return (
        f"one connection's {len(picked)} calls reached {len(reached)} of {instances} instances ({', '.join(reached)})"
    )


def one_connection_spread(picked: list[str], instances: int, balancer: str, load: pd.DataFrame) -> Verdict:
    """A balancer of streams: ``picked`` (the instances of one connection's calls, sent one after
    another with no other load) reached more than one instance. Round robin and least_conn alone
    on one connection cycle through every instance; a pick at random stays on one of three for 30
    calls with probability 3 x (1/3)^30, about 1e-14.

    Under load the calls of many connections interleave, and round robin may hand the same turn
    to a connection call after call (three clients in step over three instances): the load's
    per-connection spread is reported beside the probe, not judged.
    """
    check = f"{balancer} spreads the calls of one HTTP/2 connection over the instances"
    reached = sorted(set(picked))
    per = calls_by_connection(load)
    judged = per[per["calls"] >= MIN_CALLS]
    observed = {
        "calls": len(picked), "reached": reached, "instances": instances,
        "load_connections": len(judged), "load_by_instances": _histogram(judged),
    }  # fmt: skip
    if instances < 2 or not picked:
        return Verdict(check, None, f"{len(picked)} calls over {instances} instances: nothing to judge", observed)
    summary = _reached(picked, reached, instances)
    if len(judged):
        spread_all = int((judged["instances"] == instances).sum())
        summary += f"; under load {spread_all} of {len(judged)} connections with {MIN_CALLS}+ calls "
        summary += f"reached all {instances}"
    return Verdict(check, len(reached) >= 2, summary, observed, {"reached_at_least": 2}, false_alarm_rate=1e-14)


def one_connection_on_one(picked: list[str], instances: int, balancer: str, why: str) -> Verdict:
    """A balancer of connections (or of a key one connection always carries): all of one
    connection's calls reached one instance. Deterministic: the pick is made once per connection."""
    check = f"{balancer} pins the calls of one HTTP/2 connection to one instance ({why})"
    reached = sorted(set(picked))
    observed = {"calls": len(picked), "reached": reached, "instances": instances}
    if not picked:
        return Verdict(check, None, "no call answered: nothing to judge", observed)
    summary = _reached(picked, reached, instances)
    return Verdict(check, len(reached) == 1, summary, observed, {"reached": 1})


def connections_pinned(frame: pd.DataFrame, balancer: str) -> Verdict:
    """A balancer of connections: every call of a connection reached the instance its first did.
    Deterministic: the kernel translates a connection once, and its later packets follow."""
    check = f"{balancer} pins the calls of each HTTP/2 connection to one instance"
    per = calls_by_connection(frame)
    spread = sorted(str(c) for c in per[per["instances"] > 1].index)
    served = frame[(frame["connection"] != "") & (frame["instance"] != "")]
    first = served.groupby("connection")["instance"].first()
    by_instance = {str(k): int(v) for k, v in first.value_counts().sort_index().items()}
    observed = {
        "connections": len(per), "spread": spread, "by_instances": _histogram(per),
        "connections_by_instance": by_instance, "median_calls": float(per["calls"].median()) if len(per) else 0.0,
    }  # fmt: skip
    if per.empty:
        return Verdict(check, None, "no call reached an instance: nothing to judge", observed)
    pinned = len(per) - len(spread)
    summary = (
        f"{pinned} of {len(per)} connections kept all their calls (median {observed['median_calls']:g}) "
        f"on one instance; connections per instance: "
        + ", ".join(f"{name} {count}" for name, count in by_instance.items())
    )
    if spread:
        summary += f"; spread over several: {', '.join(spread[:5])}"
    return Verdict(check, not spread, summary, observed, {"spread": []})
