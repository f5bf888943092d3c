"""HDR percentiles and the regression rules, on numbers chosen by hand."""

from pathlib import Path

import pandas as pd
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


def test_a_fall_in_picks_as_predicted_is_a_regression(tmp_path: Path) -> None:
    from harness.reports.diff import _agreement
    from harness.reports.rundata import AlgorithmRunData

    def run(agreed: int) -> AlgorithmRunData:
        verdict = {"check": "replay: every pick as the config's algorithm predicts", "passed": agreed == 1000,
                   "observed": {"picks": 1000, "as_predicted": agreed}}  # fmt: skip
        summary = {"algorithm": "round_robin", "verdicts": [verdict]}
        return AlgorithmRunData(
            tmp_path, summary, pd.DataFrame(), pd.DataFrame(), [], "", pd.DataFrame(), pd.DataFrame()
        )

    (same,) = _agreement(run(1000), run(1000))
    assert (same.before, same.after, same.regression) == (100.0, 100.0, False)
    (fell,) = _agreement(run(1000), run(999))
    assert (fell.after, fell.regression) == (99.9, True)
