"""HAProxy's picks in a run, replayed through the model of the backend's ``balance``.

The peers are the backend's servers as the run renders them (each service expanded into its
instances, in order, with the run's weights; their ids counted from 1 in that order), named as
the log's ``%si:%sp`` names them. HAProxy logs when it accepted the connection and the
handshake and idle times in milliseconds, so a request's start is known to about three
milliseconds: picks are judged by key (``source``) or by the servers their connection counts
allow (``leastconn``); round robin's order, under two threads sharing the backend, is not in
the log to that precision, and its picks are judged by the servers that were usable.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from harness.balancers.haproxy.access_log import read_access_log
from harness.balancers.haproxy.config import HaproxyConfig
from harness.balancers.kind import PicksRun
from harness.checks.replay import (
    REPLAY_CHECK,
    Replay,
    generation_of_each_pick,
    generation_of_each_worker,
    replay_allowed,
    replay_by_key,
)
from harness.checks.replay_run import after_failure_note, judge_configs
from harness.checks.verdict import Verdict, not_applicable
from harness.models.haproxy import SourceMap, SourceRing
from harness.models.nginx_round_robin import LeastConn
from harness.models.peers import ModelPeer, PeerColumns, Prediction
from harness.runtimes.base import Instance

# HAProxy's log times a request's start from three fields each cut to the millisecond (the accept
# date, or a kept-alive connection's previous end, plus handshake and idle), and its end a fourth
# (%Ta) later: both are known to three milliseconds either way.
TOLERANCE_MS = 3
_FAILED = {502, 503, 504}


def model_peers(
    config: HaproxyConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
) -> list[ModelPeer]:
    peers = []
    for server in config.peers_servers():
        for instance in instances:
            if instance.service == server.service:
                maxconn = server.param("maxconn")
                peers.append(
                    ModelPeer(
                        instance.address, (weights or {}).get(instance.name, server.weight),
                        backup=server.param("backup") is not None, down=server.param("disabled") is not None,
                        max_conns=int(maxconn) if maxconn and maxconn.isdigit() else 0,
                    )
                )  # fmt: skip
    return peers


def _balance(config: HaproxyConfig) -> tuple[str, list[str]]:
    backend = config.under_test
    balance = (backend.first("balance") or ["balance", "roundrobin"])[1:]
    hash_type = (backend.first("hash-type") or ["hash-type", "map-based"])[1:]
    return balance[0], hash_type


def _source_model(config: HaproxyConfig, peers: list[ModelPeer]) -> tuple[str, Callable[[str], Prediction]] | None:
    balance, hash_type = _balance(config)
    if balance != "source":
        return None
    avalanche = "avalanche" in hash_type
    if hash_type[:1] == ["consistent"]:
        # HAProxy 2.6 puts the address through full_hash for its ring even without `avalanche`:
        # measured, 201 of 201 clients land as the ring predicts with it, 57 to 78 without.
        avalanche = True
        ring = SourceRing(tuple(peers), tuple(range(1, len(peers) + 1)), avalanche)
        return "HAProxy's balance source (hash-type consistent)", ring.pick
    return "HAProxy's balance source (map-based)", SourceMap(tuple(peers), avalanche).pick


def picks_from_log(log: pd.DataFrame, names: set[str]) -> tuple[pd.DataFrame, int]:
    """One row per request HAProxy sent to a server of the backend; from the first failed or
    retried one on, its health checks decide, and the picks are left out."""
    log = log[log["upstream_addr"].isin(names)]
    start_ms = np.rint((log["msec"] - log["request_time"]).to_numpy() * 1000).astype(np.int64)
    failed = (log["retries"].to_numpy() > 0) | log["status"].isin(_FAILED).to_numpy()
    keep = start_ms < start_ms[failed].min() if failed.any() else np.ones(len(log), dtype=bool)
    log, start_ms = log[keep], start_ms[keep]
    picks = pd.DataFrame(
        {
            "ms": start_ms,
            "end_ms": np.rint(log["msec"].to_numpy() * 1000).astype(np.int64),
            "scope": log["pid"].to_numpy(),
            "key": log["remote_addr"].to_numpy(),
            "address": log["upstream_addr"].to_numpy(),
        }
    )
    return picks, int((~keep).sum())


def replay_run(config: HaproxyConfig, run: PicksRun) -> list[Verdict]:
    balance, _ = _balance(config)
    if balance not in {"source", "leastconn", "roundrobin", "static-rr", "random", "first"}:
        return [not_applicable(REPLAY_CHECK, f"no model of HAProxy's balance {balance} yet")]
    generations = [model_peers(config, instances, run.weights) for _, instances in run.generations]
    names = {peer.name for peers in generations for peer in peers}
    picks, after_failure = picks_from_log(read_access_log(run.access_log), names)
    # Threads share one backend's state: one scope per process (a reload starts another).
    starts = [at for at, _ in run.generations]
    joined: dict[str, int] = {}
    if balance == "leastconn" and run.in_place:
        # Counts carry over inside the worker: its picks are judged together, the servers that
        # joined it at runtime allowed from the moment they joined.
        generation = generation_of_each_worker(picks, starts)
        generations, joined = grown_in_place(generations, starts, run.in_place)
    else:
        generation = generation_of_each_pick(picks, starts, run.in_place)
    configs = [(peers, instances) for peers, (_, instances) in zip(generations, run.generations, strict=True)]
    labels = {i.address: i.name for _, instances in run.generations for i in instances}
    return judge_configs(
        picks, generation, configs, lambda peers, part: _replay(config, peers, part, joined),
        lambda peers: _source_model(config, peers), labels, run.access_log.parent / "picks.csv",
        after_failure_note(after_failure),
    )  # fmt: skip


def _replay(
    config: HaproxyConfig, peers: list[ModelPeer], picks: pd.DataFrame, joined: Mapping[str, int] | None = None
) -> Replay:
    by_key = _source_model(config, peers)
    if by_key is not None:
        return replay_by_key(picks, *by_key)
    balance, _ = _balance(config)
    if balance == "leastconn":
        how = "among the servers its connection counts allow, to three milliseconds"
        allowed: Callable[[np.ndarray, np.ndarray], np.ndarray] = LeastConn(peers).allowed
        if joined:
            allowed = not_before_joining(allowed, peers, picks, joined)
        return replay_allowed(picks, "HAProxy's leastconn", peers, allowed, TOLERANCE_MS, how, TOLERANCE_MS)
    columns = PeerColumns(tuple(peers))

    def usable(low: np.ndarray, high: np.ndarray) -> np.ndarray:
        tier: np.ndarray = columns.tier(columns.usable(low))
        return tier

    how = "each pick among the servers usable; the order within three milliseconds is not in HAProxy's log"
    return replay_allowed(picks, f"HAProxy's {balance}", peers, usable, TOLERANCE_MS, how, TOLERANCE_MS)


def client_address_model(
    config: HaproxyConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
) -> tuple[str, Callable[[str], Prediction]] | None:
    return _source_model(config, model_peers(config, instances, weights))


def grown_in_place(
    generations: list[list[ModelPeer]], starts: Sequence[float], in_place: Sequence[float]
) -> tuple[list[list[ModelPeer]], dict[str, int]]:
    """Each generation applied inside a running worker adds its new servers to the generation that
    worker started under; returns the peers so grown and, per added server, the ms it joined."""
    grown = [list(peers) for peers in generations]
    root = list(range(len(generations)))
    joined: dict[str, int] = {}
    for at in in_place:
        index = max(0, bisect.bisect_right(list(starts), at) - 1)
        if index == 0:
            continue
        root[index] = root[index - 1]
        known = {peer.name for peer in grown[root[index]]}
        for peer in generations[index]:
            if peer.name not in known:
                grown[root[index]].append(peer)
                joined[peer.name] = round(at * 1000)
    return grown, joined


def not_before_joining(
    allowed: Callable[[np.ndarray, np.ndarray], np.ndarray],
    peers: Sequence[ModelPeer],
    picks: pd.DataFrame,
    joined: Mapping[str, int],
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``allowed`` with each server that joined at runtime out of reach (and out of the counts
    compared) for the picks made before it joined."""
    since = np.array([joined.get(peer.name, np.iinfo(np.int64).min) for peer in peers], dtype=np.int64)
    absent = picks["ms"].to_numpy(dtype=np.int64)[:, None] < since[None, :]
    beyond = np.iinfo(np.int64).max // 4  # more connections than any server has: never the fewest

    def masked(low: np.ndarray, high: np.ndarray) -> np.ndarray:
        admitted: np.ndarray = allowed(np.where(absent, beyond, low), np.where(absent, beyond, high)) & ~absent
        return admitted

    return masked
