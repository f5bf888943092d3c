"""nginx's picks in a run, replayed through the model of the upstream's algorithm.

The peers are the upstream's servers as the run's config writes them (each service expanded into
its instances, in order, with the run's weights), named as ``$upstream_addr`` names them. The
picks come from the access log: each request that went to one peer of the upstream, when it
began (``$msec - $request_time``, the millisecond nginx picked in) and, for its connection's
end, ``$upstream_response_time`` later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.balancers.kind import PicksRun
from harness.balancers.nginx.access_log import CLIENT_CLOSED, read_requests
from harness.balancers.nginx.config import NginxConfig
from harness.checks.replay import (
    REPLAY_CHECK,
    Replay,
    generation_of_each_worker,
    replay_allowed,
    replay_by_key,
    replay_in_order,
)
from harness.checks.replay_run import after_failure_note, judge_configs
from harness.checks.verdict import Verdict, not_applicable
from harness.models.nginx_hash import ConsistentHashRing, hash_key, ip_hash
from harness.models.nginx_random import random_allowed
from harness.models.nginx_round_robin import LeastConn, SmoothWeightedRoundRobin
from harness.models.peers import ModelPeer, Prediction
from harness.runtimes.base import Instance


def model_peers(
    config: NginxConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None = None
) -> list[ModelPeer]:
    """The upstream's peers in the order nginx holds them, as the run renders them."""
    peers = []
    for server in config.under_test.servers:
        for instance in instances:
            if instance.service != server.service:
                continue
            max_conns = server.param("max_conns")
            peers.append(
                ModelPeer(
                    instance.address, (weights or {}).get(instance.name, server.weight), backup=server.backup,
                    down=server.down, max_conns=int(max_conns) if max_conns and max_conns.isdigit() else 0,
                )
            )  # fmt: skip
    return peers


def _keys(logged: pd.Series) -> pd.Series:
    """The keys as nginx hashed them: the log escapes quotes, backslashes and control bytes as
    \\xHH, and writes an empty value as "-"."""
    keys = logged.where(logged != "-", "")
    escaped = keys.str.contains("\\x", regex=False)
    if escaped.any():
        keys = keys.copy()
        keys[escaped] = keys[escaped].map(
            lambda value: re.sub(r"\\x([0-9A-F]{2})", lambda match: chr(int(match.group(1), 16)), value)
        )
    return keys


# Answers nginx takes for a failed peer ("-": refused, reset or timed out; 502 and 504 its own).
_FAILED = {"-", "502", "504"}


def picks_from_log(log: pd.DataFrame, names: set[str], key: str) -> tuple[pd.DataFrame, int]:
    """One row per request nginx sent to one peer of the group, and how many were left out.

    Requests the client gave up on (499) count: nginx picked their peer all the same. From the
    first failed attempt on (a check that kills instances, after the load), nginx's failure state
    (max_fails, fail_timeout, the lowered effective weight) decides picks too: those are the
    failover checks' to judge, and left out here."""
    log = log[log["attempts"] > 0]
    # The first peer of each request: its whole address field, but for the few nginx retried.
    first = log["upstream_addr"].copy()
    retried = log["retried"].to_numpy()
    first[retried] = first[retried].str.split(",").str[0].str.strip()
    log = log[first.isin(names)]
    start_ms = np.rint((log["msec"] - log["request_time"].fillna(0.0)).to_numpy() * 1000).astype(np.int64)
    # A client that left (499, at the end of a load) leaves "-" too: nginx gave up, not the peer.
    unanswered = log["upstream_status"].str.strip().isin(_FAILED) & (log["status"] != CLIENT_CLOSED)
    failed = log["retried"].to_numpy() | unanswered.to_numpy()
    if failed.any():
        keep = start_ms < start_ms[failed].min()
        left_out = len(log) - int(keep.sum())
        log, start_ms = log[keep], start_ms[keep]
    else:
        left_out = 0
    spent_ms = np.rint(pd.to_numeric(log["upstream_response_time"], errors="coerce").fillna(0.0).to_numpy() * 1000)
    logged_ms = np.rint(log["msec"].to_numpy() * 1000).astype(np.int64)
    # The request's time not spent on its peer (reading the request, writing the answer) lies
    # before the pick or after the peer's answer: the log does not say which.
    unspent_ms = np.maximum(logged_ms - start_ms - spent_ms.astype(np.int64), 0)
    keys = _keys(log["hash_key"]) if key == "hash_key" else log[key]
    picks = pd.DataFrame(
        {
            "ms": start_ms,
            "latest_ms": start_ms + unspent_ms,
            "end_ms": start_ms + spent_ms.astype(np.int64),
            "latest_end_ms": logged_ms,
            "scope": log["pid"].to_numpy(),
            "key": keys.to_numpy(),
            "address": log["upstream_addr"].to_numpy(),
        }
    )
    return picks, left_out


def replay_run(config: NginxConfig, run: PicksRun) -> list[Verdict]:
    """The replay verdict of a run: every pick nginx logged for the upstream against its model,
    each under the config (start or reload) its worker ran."""
    upstream = config.under_test
    order_free = upstream.option("hash") is not None or upstream.has("ip_hash")
    shared = run.workers > 1 and run.zone
    if shared and not order_free:
        return [not_applicable(REPLAY_CHECK, "workers sharing a zone pick in an order the log does not keep "
                               "across workers (milliseconds of separate clocks); hash algorithms replay")]  # fmt: skip
    generations = [model_peers(config, instances, run.weights) for _, instances in run.generations]
    names = {peer.name for peers in generations for peer in peers}
    key = "hash_key" if upstream.option("hash") is not None else "remote_addr"
    picks, after_failure = picks_from_log(read_requests(run.access_log), names, key)
    generation = generation_of_each_worker(picks, [at for at, _ in run.generations])
    if shared:
        picks["scope"] = generation.map(lambda index: f"config {index + 1}")
    configs = [(peers, instances) for peers, (_, instances) in zip(generations, run.generations, strict=True)]
    labels = {instance.address: instance.name for _, instances in run.generations for instance in instances}
    return judge_configs(
        picks, generation, configs, lambda peers, part: _replay(config, peers, part),
        lambda peers: _key_model(config, peers), labels, run.access_log.parent / "picks.csv",
        after_failure_note(after_failure),
    )  # fmt: skip


def _key_model(config: NginxConfig, peers: list[ModelPeer]) -> tuple[str, Callable[[str], Prediction]] | None:
    """The model of an algorithm that picks by key alone (no state, no connection counts)."""
    upstream = config.under_test
    hashed = upstream.option("hash")
    if hashed is not None:
        if "consistent" in hashed[1:]:
            return f"nginx's hash {hashed[0]} consistent", ConsistentHashRing(peers).pick
        return f"nginx's hash {hashed[0]}", lambda key: hash_key(key, peers)
    if upstream.has("ip_hash"):
        return "nginx's ip_hash", lambda address: ip_hash(address, peers)
    return None


def _replay(config: NginxConfig, peers: list[ModelPeer], picks: pd.DataFrame) -> Replay:
    upstream = config.under_test
    by_key = _key_model(config, peers)
    if by_key is not None:
        return replay_by_key(picks, *by_key)
    random = upstream.option("random")
    if random is not None:
        two = "two" in random
        name = "nginx's random two" if two else "nginx's random"
        return replay_allowed(picks, name, peers, lambda low, high: random_allowed(peers, two, low, high))
    if upstream.has("least_conn"):
        least = LeastConn(peers)
        return replay_allowed(picks, least.name, peers, least.allowed)
    return round_robin_replay(peers, picks)


def round_robin_replay(peers: list[ModelPeer], picks: pd.DataFrame) -> Replay:
    """Smooth weighted round robin in order, per scope; by membership where max_conns decides."""
    model = SmoothWeightedRoundRobin(peers)
    if any(peer.max_conns for peer in peers):
        # Which peers max_conns leaves usable depends on connection counts: judged by membership.
        return replay_allowed(picks, f"{model.name} under max_conns", peers, model.allowed_under_max_conns)
    period = model.period()

    def sequence(count: int) -> list[str]:
        return [period[index % len(period)] for index in range(count)] if period else [""] * count

    def state_at(position: int) -> Mapping[str, object]:
        replayed = SmoothWeightedRoundRobin(peers)
        for _ in range(position % max(len(period), 1)):
            replayed.pick()
        return {"current_weights": replayed.state(), "picks_before": position}

    return replay_in_order(picks, model.name, sequence, state_at)


def client_address_model(
    config: NginxConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
) -> tuple[str, Callable[[str], Prediction]] | None:
    """The model that names a client address's peer, where the upstream hashes the address."""
    upstream = config.under_test
    hashed = upstream.option("hash")
    if hashed is not None and hashed[0] != "$remote_addr":
        return None
    return _key_model(config, model_peers(config, instances, weights))
