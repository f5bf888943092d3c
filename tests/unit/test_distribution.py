"""Goodness of fit and exact order, on synthetic data."""

import numpy as np

from harness.checks.distribution import FALSE_ALARM_RATE, exact_cycle, spread_matches

EVEN = {"b1": 1 / 3, "b2": 1 / 3, "b3": 1 / 3}


def test_exactly_even_counts_pass() -> None:
    verdict = spread_matches({"b1": 1000, "b2": 1000, "b3": 1000}, EVEN)
    assert verdict.passed, verdict.summary


def test_skewed_counts_fail_and_show_the_numbers() -> None:
    verdict = spread_matches({"b1": 1500, "b2": 750, "b3": 750}, EVEN)
    assert verdict.passed is False
    assert "1500" in verdict.summary and "1000.0" in verdict.summary, verdict.summary


def test_requests_on_an_instance_with_no_share_fail() -> None:
    verdict = spread_matches({"b1": 10, "b2": 10, "backup": 3}, {"b1": 0.5, "b2": 0.5})
    assert verdict.passed is False
    assert "backup" in verdict.summary


def test_false_alarm_rate_on_random_multinomial_data_is_at_most_stated() -> None:
    # Requests that really land at random with the expected shares: the check must
    # reject about FALSE_ALARM_RATE of the time. 3000 samples; with p = 0.001 the
    # count of rejections is Binomial(3000, 0.001): P(>= 10) < 1e-4.
    rng = np.random.default_rng(20261127)
    shares = {"b1": 0.5, "b2": 0.3, "b3": 0.2}
    rejections = 0
    for _ in range(3000):
        sample = rng.multinomial(2000, list(shares.values()))
        counts = dict(zip(shares, (int(c) for c in sample), strict=True))
        rejections += spread_matches(counts, shares).passed is False
    assert FALSE_ALARM_RATE == 0.001
    assert rejections < 10, f"{rejections} false alarms in 3000 correct samples (expected about 3)"


def test_a_rotation_of_the_period_is_in_order() -> None:
    verdict = exact_cycle(["b2", "b3", "b1", "b2", "b3", "b1"], ["b1", "b2", "b3"])
    assert verdict.passed, verdict.summary


def test_out_of_order_names_the_first_wrong_request() -> None:
    verdict = exact_cycle(["b1", "b1", "b2", "b3", "b1", "b2"], ["b1", "b2", "b3"])
    assert verdict.passed is False
    assert "first at request" in verdict.summary, verdict.summary
    assert verdict.observed["mismatches"] > 0
