"""HDR percentiles and the regression rules, on numbers chosen by hand."""

import pytest

from harness.reports.diff import _worse
from harness.reports.latency import percentiles


def test_hdr_percentiles_are_within_a_tenth_of_a_percent_of_the_exact_value() -> None:
    values = [float(ms) for ms in range(1, 1001)]  # 1 ms to 1000 ms, one each
    found = percentiles(values, (50.0, 99.0))
    assert found["p50"] == pytest.approx(500.0, rel=1e-3)
    assert found["p99"] == pytest.approx(990.0, rel=1e-3)


def test_no_values_give_no_percentiles() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "p99_9": None}


@pytest.mark.parametrize(
    ("before", "after", "worse"),
    [
        (1.0, 2.0, False),  # twice as slow, but only 1 ms: noise on a small machine
        (10.0, 16.0, True),  # 1.6x and 6 ms more
        (10.0, 14.0, False),  # 4 ms more, but only 1.4x
        (None, 5.0, False),
    ],
)
def test_a_latency_regression_needs_both_the_ratio_and_the_step(
    before: float | None, after: float, worse: bool
) -> None:
    assert _worse(before, after, ratio=1.5, step=2.0) is worse
