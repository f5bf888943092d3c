"""kube-proxy's picks, from the clients' records: its nftables rules log no request.

kube-proxy picks per connection with ``numgen random mod N`` over the ready endpoints, so a
pick is judged by membership: an instance of the Service. With ``sessionAffinity: ClientIP``
its rules add the client to an affinity set that each connection refreshes, so a client's
connection within ``timeoutSeconds`` of its last one must reach the same endpoint; the first,
and one after the timeout, may reach any.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.balancers.kind import PicksRun
from harness.balancers.kubeproxy.config import KubeProxyConfig
from harness.checks.replay import REPLAY_CHECK, Replay
from harness.checks.verdict import Verdict, not_applicable
from harness.results.statuses import SWITCHING_PROTOCOLS


def picks_from_records(records: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Every request an instance answered, in time order, until the first that failed (a fault's)."""
    records = records.sort_values("time", kind="stable")
    # A session's 101 (a WebSocket's upgrade) is an answer; a 4xx is the application's, not a failed pick.
    status = records["status"]
    failed = ((status < 200) & (status != SWITCHING_PROTOCOLS)) | (status >= 500) | (records["instance"] == "")
    cut = records["time"][failed].min() if failed.any() else np.inf
    kept = records[records["time"] < cut]
    picks = pd.DataFrame(
        {
            "ms": np.rint(kept["time"].to_numpy() * 1000).astype(np.int64),
            "end_ms": np.rint((kept["time"] + kept["latency_ms"] / 1000).to_numpy() * 1000).astype(np.int64),
            "scope": "rules",
            "key": kept["client"].to_numpy(),
            "address": kept["instance"].to_numpy(),
        }
    )
    return picks.reset_index(drop=True), len(records) - len(kept)


def replay_run(config: KubeProxyConfig, run: PicksRun) -> list[Verdict]:
    if run.records is None or run.records.empty:
        return [not_applicable(REPLAY_CHECK, "no client records to replay kube-proxy's picks from")]
    endpoints = {instance.name for _, instances in run.generations for instance in instances}
    picks, left = picks_from_records(run.records)
    member = picks["address"].isin(endpoints).to_numpy()
    model, how = "kube-proxy's random endpoint (numgen random)", "each connection among the Service's endpoints"
    agrees = member
    if config.affinity_timeout_s is not None:
        model = f"kube-proxy's ClientIP affinity ({config.affinity_timeout_s:g} s)"
        how = "each client's connections on its endpoint until the affinity times out"
        by_client = picks.groupby("key", sort=False)
        previous = by_client["address"].shift()
        # The affinity entry lives timeoutSeconds from the client's last connection.
        gap_s = (picks["ms"] - by_client["end_ms"].shift()) / 1000
        free = previous.isna() | (gap_s > config.affinity_timeout_s)
        agrees = member & (free | (picks["address"] == previous)).to_numpy()
    picks = picks.assign(predicted="", agrees=agrees)
    misses = np.flatnonzero(~agrees)
    first = int(misses[0]) if len(misses) else None
    left_out = f"; {left:,} requests from the first failed one on left out" if left else ""
    return [Replay(model, how, picks, first).verdict(left_out)]
