"""A run's picks replayed through the models: agreement, and the first disagreement with its context."""

import pandas as pd

from harness.checks.replay import combined, replay_allowed, replay_by_key, replay_in_order
from harness.models.nginx_hash import ip_hash
from harness.models.nginx_round_robin import LeastConn, SmoothWeightedRoundRobin
from harness.models.peers import ModelPeer

WEIGHTED = [ModelPeer("a", 3), ModelPeer("b", 1)]


def frame(addresses: list[str], ms: list[int] | None = None, keys: list[str] | None = None) -> pd.DataFrame:
    count = len(addresses)
    times = ms if ms is not None else list(range(count))
    return pd.DataFrame(
        {
            "ms": times,
            "end_ms": [t + 1 for t in times],
            "scope": ["4242"] * count,
            "key": keys if keys is not None else ["127.10.0.1"] * count,
            "address": addresses,
        }
    )


def swrr_replay(peers: list[ModelPeer], picks: pd.DataFrame):  # type: ignore[no-untyped-def]
    period = SmoothWeightedRoundRobin(peers).period()

    def state_at(position: int) -> dict[str, object]:
        model = SmoothWeightedRoundRobin(peers)
        for _ in range(position):
            model.pick()
        return {"current_weights": model.state()}

    return replay_in_order(
        picks, "nginx's smooth weighted round robin", lambda n: [period[i % len(period)] for i in range(n)], state_at
    )


def test_a_weighted_sequence_as_predicted_agrees_pick_by_pick() -> None:
    replay = swrr_replay(WEIGHTED, frame(list("aaba") * 25))
    verdict = replay.verdict()
    assert verdict.passed, verdict.summary
    assert verdict.summary.startswith("100 of 100 picks as nginx's smooth weighted round robin predicts")


def test_one_swapped_pick_is_the_first_disagreement_with_the_state_before_it() -> None:
    sequence = list("aaba") * 25
    sequence[41], sequence[42] = sequence[42], sequence[41]  # request 42 took b, 43 took a
    verdict = swrr_replay(WEIGHTED, frame(sequence)).verdict()
    assert verdict.passed is False
    assert "98 of 100 picks" in verdict.summary
    first = verdict.observed["first_disagreement"]
    assert "first at request 42" in verdict.summary, verdict.summary
    assert (first["predicted"], first["observed"]) == ("a", "b")
    assert len(first["around"]) == 11  # five requests either side
    # 41 picks before it: ten periods, then a (a: 3 - 4 = -1, b: 1).
    assert first["model_state"] == {"current_weights": {"a": -1, "b": 1}}


def test_picks_within_one_millisecond_agree_in_any_order() -> None:
    sequence = list("aaba") * 4
    sequence[1], sequence[2] = sequence[2], sequence[1]
    ms = [0, 1, 1, *range(2, 15)]  # requests 2 and 3 in the same millisecond
    verdict = swrr_replay(WEIGHTED, frame(sequence, ms)).verdict()
    assert verdict.passed, verdict.summary


def test_a_backup_picked_while_primaries_serve_disagrees() -> None:
    peers = [ModelPeer("a"), ModelPeer("b"), ModelPeer("spare", backup=True)]
    verdict = swrr_replay(peers, frame(["a", "b", "a", "spare", "a", "b"])).verdict()
    assert verdict.passed is False
    assert verdict.observed["first_disagreement"]["observed"] == "spare"


def test_hash_picks_are_judged_by_key_in_any_order() -> None:
    peers = [ModelPeer("127.0.1.1:1"), ModelPeer("127.0.1.2:1"), ModelPeer("127.0.1.3:1")]
    keys = ["127.10.0.1", "127.10.1.1", "127.10.0.1"]
    agreeing = frame(["127.0.1.2:1", "127.0.1.3:1", "127.0.1.2:1"], keys=keys)
    assert replay_by_key(agreeing, "nginx's ip_hash", lambda key: ip_hash(key, peers)).verdict().passed
    moved = frame(["127.0.1.2:1", "127.0.1.3:1", "127.0.1.1:1"], keys=keys)
    verdict = replay_by_key(moved, "nginx's ip_hash", lambda key: ip_hash(key, peers)).verdict()
    assert verdict.passed is False and "2 of 3 picks" in verdict.summary


def test_least_conn_flags_a_pick_of_the_peer_surely_busiest() -> None:
    peers = [ModelPeer("a"), ModelPeer("b")]
    # A long request on a from ms 0 to 100; at ms 50 a new request went to a anyway.
    picks = pd.DataFrame(
        {"ms": [0, 50, 60], "end_ms": [100, 51, 61], "scope": ["1"] * 3, "key": [""] * 3, "address": ["a", "a", "b"]}
    )
    verdict = replay_allowed(picks, "nginx's least_conn", peers, LeastConn(peers).allowed).verdict()
    assert verdict.passed is False and "2 of 3 picks" in verdict.summary
    assert verdict.observed["first_disagreement"]["model_state"]["connections_at_least"] == {"a": 1, "b": 0}


def test_least_conn_allows_a_peer_whose_requests_may_have_been_picked_late() -> None:
    peers = [ModelPeer("a"), ModelPeer("b")]
    # b's two requests began at ms 0 and spent 4 ms on b of the 6 before they were logged: their
    # 2 ms unspent may lie before the pick, so at ms 6 they may still be open, as a's two are.
    picks = pd.DataFrame(
        {
            "ms": [0, 0, 1, 1, 6],
            "latest_ms": [2, 2, 1, 1, 6],
            "end_ms": [4, 4, 9, 9, 8],
            "latest_end_ms": [6, 6, 9, 9, 8],
            "scope": ["1"] * 5,
            "key": [""] * 5,
            "address": ["b", "b", "a", "a", "a"],
        }
    )
    assert replay_allowed(picks, "nginx's least_conn", peers, LeastConn(peers).allowed).verdict().passed
    # Picked at once, with the time after the answer, b's requests surely ended by ms 4.
    picks["latest_ms"], picks["latest_end_ms"] = picks["ms"], picks["end_ms"]
    verdict = replay_allowed(picks, "nginx's least_conn", peers, LeastConn(peers).allowed).verdict()
    assert verdict.passed is False and "4 of 5 picks" in verdict.summary, verdict.summary


def test_replays_of_several_configs_combine_in_time_order() -> None:
    first = swrr_replay(WEIGHTED, frame(list("aaba")))
    second = swrr_replay([ModelPeer("a"), ModelPeer("b")], frame(list("abab"), ms=[10, 11, 12, 13]))
    verdict = combined([first, second]).verdict()
    assert verdict.passed and "8 of 8 picks" in verdict.summary


def test_no_picks_is_not_a_pass() -> None:
    assert swrr_replay(WEIGHTED, frame([])).verdict().passed is None


def test_kube_proxy_affinity_holds_a_client_until_its_timeout() -> None:
    from pathlib import Path
    from types import SimpleNamespace

    from harness.balancers.kind import PicksRun
    from harness.balancers.kubeproxy.replay import replay_run
    from harness.runtimes.base import Instance

    instances = [Instance(name, "app", "127.0.1.1", 1, 0, 0) for name in ("app-1", "app-2")]

    def records(instances_seen: list[str], times: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"time": times, "client": "127.10.0.1", "instance": instances_seen, "status": 200,
                             "latency_ms": 1.0, "name": "/api/count", "error": ""})  # fmt: skip

    config = SimpleNamespace(affinity_timeout_s=10.0)
    kept = PicksRun(Path("none"), [(0.0, instances)], None, 1, False, records(["app-1", "app-1"], [1.0, 2.0]))
    assert replay_run(config, kept)[0].passed  # type: ignore[arg-type]
    moved = PicksRun(Path("none"), [(0.0, instances)], None, 1, False, records(["app-1", "app-2"], [1.0, 2.0]))
    assert replay_run(config, moved)[0].passed is False  # type: ignore[arg-type]
    after = PicksRun(Path("none"), [(0.0, instances)], None, 1, False, records(["app-1", "app-2"], [1.0, 20.0]))
    assert replay_run(config, after)[0].passed  # type: ignore[arg-type]  # the affinity had timed out
