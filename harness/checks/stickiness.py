"""Session stickiness: each client stays on one instance; clients spread over several."""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import Verdict, not_applicable


def each_client_on_one_instance(requests: pd.DataFrame, check: str = "each client sticks to one instance") -> Verdict:
    """Every client address was served by exactly one instance over the whole run."""
    served = requests[requests["instance"] != ""]
    if served.empty:
        return Verdict(check, False, "no served requests were recorded")
    per_client = served.groupby("client")["instance"].nunique()
    movers = per_client[per_client > 1]
    observed = {"clients": len(per_client), "clients_on_several_instances": len(movers)}
    expected = {"clients_on_several_instances": 0}
    if movers.empty:
        return Verdict(check, True, f"all {len(per_client)} clients stayed on one instance each", observed, expected)
    example = movers.index[0]
    seen = sorted(served.loc[served["client"] == example, "instance"].unique())
    return Verdict(
        check,
        False,
        f"{len(movers)} of {len(per_client)} clients reached several instances (e.g. {example} -> {seen})",
        observed,
        expected,
    )


def clients_spread(requests: pd.DataFrame, minimum: int = 2, check: str = "clients spread over instances") -> Verdict:
    """The clients together reached at least ``minimum`` instances."""
    served = requests[requests["instance"] != ""]
    mapping = served.groupby("client")["instance"].first()
    per_instance = mapping.value_counts().to_dict()
    observed = {"clients_per_instance": {str(k): int(v) for k, v in per_instance.items()}}
    expected = {"instances_reached_at_least": minimum}
    passed = len(per_instance) >= minimum
    summary = (
        f"{len(mapping)} clients reached {len(per_instance)} instances (need >= {minimum}): "
        f"{observed['clients_per_instance']}"
    )
    return Verdict(check, passed, summary, observed, expected)


def clients_not_pinned(requests: pd.DataFrame, instances: int, minimum_requests: int = 20) -> Verdict:
    """Without affinity, a client's connections land anywhere: every client that sent at least
    ``minimum_requests`` requests reached more than one instance. With ``instances`` equally
    likely, one client stays on one instance by chance with probability instances x
    (1/instances)^n: below one in a million per client for n = 20 over 3 instances."""
    check = "no client is pinned to one instance without session affinity"
    served = requests[requests["instance"] != ""]
    per_client = served.groupby("client")["instance"].agg(["count", "nunique"])
    judged = per_client[per_client["count"] >= minimum_requests]
    pinned = sorted(str(client) for client in judged[judged["nunique"] < 2].index)
    observed = {"clients_judged": len(judged), "pinned": pinned}
    if instances < 2 or judged.empty:
        return Verdict(
            check,
            None,
            f"{len(judged)} clients with {minimum_requests}+ requests over {instances} instances: nothing to judge",
            observed,
        )
    return Verdict(
        check,
        not pinned,
        f"{len(judged) - len(pinned)} of {len(judged)} clients reached several instances; pinned: {pinned or 'none'}",
        observed,
        {"pinned": []},
    )


def one_client_only() -> Verdict:
    """A load from one address (wrk) is one client: stickiness cannot be told from it."""
    return not_applicable("each client sticks to one instance", "wrk sends from one address: one client")
