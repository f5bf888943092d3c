"""nginx's pick order, as measured (shared NGINX-FACTS): smooth weighted round robin."""

import pytest

from harness.checks.schedule import smooth_weighted_round_robin


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((1, 1, 1), ["b1", "b2", "b3"]),
        ((3, 1), ["b1", "b1", "b2", "b1"]),
        ((5, 1, 1), ["b1", "b1", "b2", "b1", "b3", "b1", "b1"]),
        ((3, 2, 1), ["b1", "b2", "b1", "b3", "b2", "b1"]),
    ],
)
def test_period_matches_measured_nginx_order(weights: tuple[int, ...], expected: list[str]) -> None:
    peers = [(f"b{i + 1}", weight) for i, weight in enumerate(weights)]
    assert smooth_weighted_round_robin(peers) == expected


def test_each_peer_appears_weight_times_per_period() -> None:
    peers = [("a", 4), ("b", 7), ("c", 2)]
    period = smooth_weighted_round_robin(peers)
    assert {name: period.count(name) for name, _ in peers} == {"a": 4, "b": 7, "c": 2}


def test_rejects_non_positive_weights() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        smooth_weighted_round_robin([("a", 0)])
