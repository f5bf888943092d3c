"""Client-side balancing's picks, replayed through the model of its policy.

The load process writes the same log as nginx (``harness.balancers.client.balancer``), one
picking state for every client of the process: round robin is nginx's smooth weighted round
robin over the targets in the order the run published them, least outstanding judged by the
connection counts the log allows, random by the usable targets, hash exactly by client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.balancers.client.config import ClientConfig
from harness.balancers.kind import PicksRun
from harness.balancers.nginx.access_log import read_requests
from harness.balancers.nginx.replay import picks_from_log, round_robin_replay
from harness.checks.replay import Replay, replay_allowed, replay_by_key
from harness.checks.replay_run import after_failure_note, judge_configs
from harness.checks.verdict import Verdict
from harness.models.client import client_hash
from harness.models.nginx_round_robin import LeastConn
from harness.models.peers import ModelPeer, PeerColumns, Prediction
from harness.runtimes.base import Instance


def model_peers(
    config: ClientConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
) -> list[ModelPeer]:
    weight_of = {server.service: server.weight for server in config.servers}
    return [
        ModelPeer(instance.address, (weights or {}).get(instance.name, weight_of[instance.service]))
        for instance in instances
        if instance.service in weight_of
    ]


def replay_run(config: ClientConfig, run: PicksRun) -> list[Verdict]:
    generations = [model_peers(config, instances, run.weights) for _, instances in run.generations]
    names = {peer.name for peers in generations for peer in peers}
    picks, after_failure = picks_from_log(read_requests(run.access_log), names, "remote_addr")
    # One load process keeps the policy's state through reloads: the picks are one sequence,
    # split only where the targets changed.
    starts = np.array([round(at * 1000) for at, _ in run.generations], dtype=np.int64)
    generation = pd.Series(np.maximum(np.searchsorted(starts, picks["ms"].to_numpy(), side="right") - 1, 0))
    configs = [(peers, instances) for peers, (_, instances) in zip(generations, run.generations, strict=True)]
    labels = {instance.address: instance.name for _, instances in run.generations for instance in instances}
    return judge_configs(
        picks, generation, configs, lambda peers, part: _replay(config.policy, peers, part),
        lambda peers: None, labels, run.access_log.parent / "picks.csv", after_failure_note(after_failure),
    )  # fmt: skip


def _replay(policy: str, peers: list[ModelPeer], picks: pd.DataFrame) -> Replay:
    if policy == "hash":
        return replay_by_key(picks, "the client-side hash policy", lambda client: client_hash(client, peers))
    if policy == "least_outstanding":
        return replay_allowed(picks, "the client-side least outstanding policy", peers, LeastConn(peers).allowed)
    if policy == "random":
        columns = PeerColumns(tuple(peers))

        def usable(low: np.ndarray, high: np.ndarray) -> np.ndarray:
            tier: np.ndarray = columns.tier(columns.usable(low))
            return tier

        return replay_allowed(picks, "the client-side random policy", peers, usable, how="each pick among the usable")
    return round_robin_replay(peers, picks)


def client_address_model(
    config: ClientConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
) -> tuple[str, Callable[[str], Prediction]] | None:
    """The hash policy names each client's instance from its address."""
    if config.policy != "hash":
        return None
    peers = model_peers(config, instances, weights)
    return "the client-side hash policy", lambda client: client_hash(client, peers)
