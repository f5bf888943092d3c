"""Stickiness, spread over instances, and client errors, on synthetic request tables."""

import pandas as pd

from harness.checks.errors import no_client_errors
from harness.checks.stickiness import clients_spread, each_client_on_one_instance


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"time": i, "client": c, "instance": inst, "status": s, "latency_ms": 1.0, "name": "/", "error": ""}
            for i, (c, inst, s) in enumerate(rows)
        ]
    )


def test_clients_that_stay_put_pass() -> None:
    requests = frame([("c1", "b1", 200), ("c1", "b1", 200), ("c2", "b2", 200)])
    assert each_client_on_one_instance(requests).passed
    assert clients_spread(requests).passed


def test_a_client_that_moves_fails_with_an_example() -> None:
    verdict = each_client_on_one_instance(frame([("c1", "b1", 200), ("c1", "b2", 200)]))
    assert verdict.passed is False
    assert "c1 -> ['b1', 'b2']" in verdict.summary
    assert verdict.observed["clients_on_several_instances"] == 1


def test_all_clients_on_one_instance_is_not_a_spread() -> None:
    verdict = clients_spread(frame([("c1", "b1", 200), ("c2", "b1", 200)]))
    assert verdict.passed is False
    assert "reached 1 instances" in verdict.summary


def test_errors_are_counted_by_status() -> None:
    verdict = no_client_errors(frame([("c1", "b1", 200), ("c1", "", 502), ("c1", "b1", 200)]))
    assert verdict.passed is False
    assert verdict.observed == {"requests": 3, "errors": 1}
