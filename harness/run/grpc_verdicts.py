"""Which checks a run over long-lived HTTP/2 connections (gRPC calls, plain GETs) calls for: one
connection's requests spread, or pinned."""

from __future__ import annotations

import pandas as pd

from harness.checks.grpc_connections import connections_pinned, one_connection_on_one, one_connection_spread
from harness.checks.verdict import Verdict
from harness.load import probes
from harness.load.route import FixedRoute, Route
from harness.run.context import RunContext

PROBE_CALLS = 30  # one connection's calls, one after another, after the load


def grpc_verdicts(context: RunContext, frame: pd.DataFrame, route: Route, instances: int) -> list[Verdict]:
    """After the load: one connection's calls alone, then what the load's connections did.

    A balancer of connections (kube-proxy) picks once per connection, and so does a hash of the
    client's address (ip_hash): every call of a connection follows its first. A balancer of
    HTTP/2 streams picks per call.
    """
    if not context.spec.workload.over_one_connection or not isinstance(route, FixedRoute):
        return []
    balancer = context.kind.name
    what = "calls" if context.spec.workload.is_grpc else "requests"
    context.phase(f"HTTP/2: {PROBE_CALLS} {what} one after another on one connection")
    picked = probes.one_connection(route, PROBE_CALLS, http2=context.spec.workload.is_http2)
    if context.kind.balances_connections:
        why = "it balances connections"
    elif context.algorithm.sticky:
        why = f"{context.algorithm.name} keys on the client, which one connection never changes"
    else:
        return [one_connection_spread(picked, instances, balancer, frame)]
    return [one_connection_on_one(picked, instances, balancer, why), connections_pinned(frame, balancer)]
