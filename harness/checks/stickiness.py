"""Session stickiness: each client stays on one instance; clients spread over several."""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import Verdict


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
