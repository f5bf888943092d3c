"""HAProxy's models against values worked out by hand from lb_map.c, lb_chash.c and backend.c."""

from harness.models.haproxy import SourceMap, SourceRing, full_hash, server_map, source_hash
from harness.models.peers import ModelPeer

A, B, C = "127.0.1.1:80", "127.0.1.2:80", "127.0.1.3:80"


def test_the_map_follows_declaration_order_for_equal_weights() -> None:
    assert server_map([ModelPeer(A), ModelPeer(B), ModelPeer(C)]) == [A, B, C]


def test_the_map_by_hand_for_weights_three_and_one() -> None:
    # Size 4. Slot 0: scores 3, 1 -> (3+4)//4 = 1, (1+4)//4 = 1: the first declared, a (3-4 = -1).
    # Slot 1: 2, 2 -> 1, 1: a (-2). Slot 2: 1, 3 -> 1, 1: a (-3). Slot 3: 0, 4 -> 1, 2: b.
    assert server_map([ModelPeer("a", 3), ModelPeer("b", 1)]) == ["a", "a", "a", "b"]


def test_weights_are_divided_by_their_greatest_common_divisor() -> None:
    assert server_map([ModelPeer("a", 2), ModelPeer("b", 2)]) == ["a", "b"]


def test_only_the_first_backup_serves_when_no_active_server_is_up() -> None:
    peers = [ModelPeer("a", down=True), ModelPeer("s1", backup=True), ModelPeer("s2", backup=True)]
    assert server_map(peers) == ["s1"]


def test_source_hashes_the_address_as_a_number() -> None:
    # 127.10.0.1 = 0x7F0A0001 = 2131361793, a multiple of 3 (digits add up to 36): the first slot.
    assert source_hash("127.10.0.1") == 2131361793
    peers = (ModelPeer(A), ModelPeer(B), ModelPeer(C))
    assert str(SourceMap(peers).pick("127.10.0.1")) == A
    # 127.10.1.1 = 2131362049, digits add up to 31: 1 more than a multiple of 3.
    assert str(SourceMap(peers).pick("127.10.1.1")) == B


def test_full_hash_is_a_32_bit_mix() -> None:
    values = {full_hash(value) for value in range(10000)}
    assert len(values) == 10000 and all(0 <= value < 2**32 for value in values)


def test_the_ring_has_16_nodes_per_weight_and_takes_the_closest() -> None:
    ring = SourceRing((ModelPeer(A, 2), ModelPeer(B)), (1, 2))
    keys, names = ring.ring
    assert len(keys) == 48 and names.count(A) == 32
    # A hash exactly on a node goes to that node's server.
    node = full_hash(2 * 4096 + 3)  # server id 2, node 3
    assert names[keys.index(node)] == B


def test_removing_a_server_moves_only_its_clients_on_the_ring() -> None:
    three = (ModelPeer(A), ModelPeer(B), ModelPeer(C))
    before = SourceRing(three, (1, 2, 3), avalanche=True)
    after = SourceRing((three[0], three[1], ModelPeer(C, down=True)), (1, 2, 3), avalanche=True)
    clients = [f"127.10.{i // 256}.{i % 256}" for i in range(1, 500)]
    moved = [c for c in clients if str(before.pick(c)) != str(after.pick(c))]
    assert moved and all(str(before.pick(c)) == C for c in moved)
