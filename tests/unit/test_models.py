"""The reference models against sequences worked out by hand from nginx's sources
(ngx_http_upstream_round_robin.c, ngx_http_upstream_least_conn_module.c,
ngx_http_upstream_ip_hash_module.c, ngx_http_upstream_hash_module.c)."""

import zlib

import numpy as np

from harness.models.nginx_hash import ConsistentHashRing, hash_key, ip_hash, ip_hash_octets
from harness.models.nginx_random import random_allowed
from harness.models.nginx_round_robin import LeastConn, SmoothWeightedRoundRobin
from harness.models.peers import ModelPeer

A, B, C = "127.0.1.1:8001", "127.0.1.2:8001", "127.0.1.3:8001"
THREE = [ModelPeer(A), ModelPeer(B), ModelPeer(C)]


def picks(model: SmoothWeightedRoundRobin, count: int, **kwargs: object) -> list[str]:
    return [str(model.pick(**kwargs)) for _ in range(count)]  # type: ignore[arg-type]


def test_smooth_weighted_round_robin_is_nginx_commit_example() -> None:
    # nginx's changeset introducing smooth weighted round robin: weights 5, 1, 1 give a a b a c a a.
    model = SmoothWeightedRoundRobin([ModelPeer("a", 5), ModelPeer("b", 1), ModelPeer("c", 1)])
    assert picks(model, 14) == list("aabacaa") * 2


def test_a_down_server_is_skipped_and_backups_wait_for_every_primary() -> None:
    peers = [ModelPeer("a"), ModelPeer("b", down=True), ModelPeer("c"), ModelPeer("spare", backup=True)]
    assert picks(SmoothWeightedRoundRobin(peers), 4) == ["a", "c", "a", "c"]
    model = SmoothWeightedRoundRobin(peers)
    assert picks(model, 2, failed=frozenset({"a", "c"})) == ["spare", "spare"]


def test_max_conns_leaves_a_full_peer_out() -> None:
    peers = [ModelPeer("a", max_conns=1), ModelPeer("b")]
    model = SmoothWeightedRoundRobin(peers)
    assert str(model.pick({"a": 1, "b": 5})) == "b"
    assert model.pick({"a": 1, "b": 0}, failed=frozenset({"b"})) is None  # nginx answers 502


def test_least_conn_compares_connections_per_weight() -> None:
    model = LeastConn([ModelPeer("a", 2), ModelPeer("b", 1)])
    # a: 1 connection on weight 2 (0.5 each) beats b: 1 on weight 1.
    assert str(model.pick({"a": 1, "b": 1})) == "a"
    assert str(model.pick({"a": 3, "b": 1})) == "b"


def test_least_conn_breaks_ties_by_smooth_weighted_round_robin() -> None:
    model = LeastConn([ModelPeer("a", 3), ModelPeer("b", 1)])
    assert [str(model.pick({})) for _ in range(4)] == ["a", "a", "b", "a"]


def test_least_conn_allows_only_peers_no_other_surely_beats() -> None:
    model = LeastConn(THREE)
    allowed = model.allowed(np.array([[2, 0, 0]]), np.array([[2, 1, 0]]))
    assert allowed.tolist() == [[False, True, True]]  # A has 2 for sure, C at most 0


def test_least_conn_weighs_the_bounds_and_falls_back_to_backups() -> None:
    peers = [ModelPeer("a", 2, max_conns=2), ModelPeer("b", 1, max_conns=1), ModelPeer("spare", backup=True)]
    model = LeastConn(peers)
    # a: 1 of weight 2 (0.5) against b: 1 of weight 1: b is surely busier per weight.
    assert model.allowed(np.array([[1, 0, 0]]), np.array([[1, 1, 0]])).tolist() == [[True, True, False]]
    # Both primaries at their max_conns for sure: only the backup.
    assert model.allowed(np.array([[2, 1, 0]]), np.array([[2, 1, 0]])).tolist() == [[False, False, True]]


def test_ip_hash_by_hand() -> None:
    # 127.10.0.1: 89 -> (89*113+127)%6271 = 3913 -> (3913*113+10)%6271 = 3209 -> (3209*113+0)%6271 = 5170;
    # 5170 % 3 = 1: the second server.
    assert ip_hash_octets("127.10.0.1") == (127, 10, 0)
    assert str(ip_hash("127.10.0.1", THREE)) == B
    assert str(ip_hash("127.10.0.200", THREE)) == B  # the fourth octet is not hashed
    # 127.10.1.1 ends at 5171: 5171 % 3 = 2.
    assert str(ip_hash("127.10.1.1", THREE)) == C


def test_ip_hash_rehashes_from_the_last_value_when_the_peer_is_down() -> None:
    # From 5170 again: 1134, 2732, 1437; 1437 % 3 = 0: the first server.
    peers = [ModelPeer(A), ModelPeer(B, down=True), ModelPeer(C)]
    assert str(ip_hash("127.10.0.1", peers)) == A


def test_ip_hash_walks_the_weights() -> None:
    # 5170 % 3 (total weight 2 + 1) = 1, which falls inside the first server's weight of 2.
    assert str(ip_hash("127.10.0.1", [ModelPeer(A, 2), ModelPeer(B, 1)])) == A


def test_hash_uses_cache_memcached_hash_of_the_key() -> None:
    # crc32("123456789") is the CRC-32 check value 0xCBF43926; (>> 16) & 0x7fff = 0x4BF4 = 19444;
    # 19444 % 3 = 1: the second server.
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert str(hash_key("123456789", THREE)) == B


def test_hash_of_an_empty_key_falls_back_to_round_robin() -> None:
    assert hash_key("", THREE).allowed == {A, B, C}
    assert hash_key("", THREE).exact is None


def test_hash_moves_to_another_peer_when_its_own_is_down() -> None:
    peers = [ModelPeer(A), ModelPeer(B, down=True), ModelPeer(C)]
    assert str(hash_key("123456789", peers)) in {A, C}


def test_consistent_ring_has_160_points_per_weight_and_wraps() -> None:
    ring = ConsistentHashRing([ModelPeer(A, 2), ModelPeer(B)])
    assert len(ring.hashes) == 3 * 160  # no two points collide for these servers
    assert list(ring.hashes) == sorted(ring.hashes)
    # A key hashing past the last point goes to the first point's server.
    beyond = next(key for key in (f"k{i}" for i in range(100000)) if zlib.crc32(key.encode()) > ring.hashes[-1])
    assert str(ring.pick(beyond)) == ring.servers[0]


def test_consistent_ring_moves_only_the_removed_peers_keys() -> None:
    keys = [f"/api/key-k{i}/count" for i in range(400)]
    before = ConsistentHashRing(THREE)
    after = ConsistentHashRing(THREE[:2])
    moved = [key for key in keys if str(before.pick(key)) != str(after.pick(key))]
    assert moved and all(str(before.pick(key)) == C for key in moved)
    down = [ModelPeer(A), ModelPeer(B), ModelPeer(C, down=True)]
    # A down peer keeps its points: its keys go to the next point's peer, as if it were removed.
    assert all(str(ConsistentHashRing(down).pick(key)) == str(after.pick(key)) for key in keys)


def test_random_two_never_picks_the_peer_with_surely_most_connections() -> None:
    low, high = np.array([[5, 0, 0]]), np.array([[5, 1, 2]])
    assert random_allowed(THREE, False, low, high).tolist() == [[True, True, True]]
    assert random_allowed(THREE, True, low, high).tolist() == [[False, True, True]]


def test_round_robin_under_max_conns_sends_to_the_backup_only_when_every_primary_may_be_full() -> None:
    peers = [ModelPeer("a", max_conns=1), ModelPeer("b", max_conns=1), ModelPeer("spare", backup=True)]
    model = SmoothWeightedRoundRobin(peers)
    assert model.allowed_under_max_conns(np.array([[0, 0, 0]]), np.array([[0, 0, 0]])).tolist() == [[True, True, False]]
    assert model.allowed_under_max_conns(np.array([[1, 0, 0]]), np.array([[1, 1, 0]])).tolist() == [[False, True, True]]


def test_client_hash_model_is_the_policy_itself() -> None:
    from harness.balancers.client.policies import ClientHash, Target
    from harness.models.client import client_hash

    targets = [Target("one", 2), Target("two", 1), Target("three", 1)]
    peers = [ModelPeer(target.name, target.weight) for target in targets]
    policy = ClientHash()
    for index in range(200):
        client = f"127.10.{index}.1"
        assert str(client_hash(client, peers)) == policy.pick(targets, lambda _: True, client).name  # type: ignore[union-attr]
