"""A thousand instances behind one nginx or HAProxy, judged as three are."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.bench import BenchResult
from harness.pytest_plugin import verdict_report

pytestmark = pytest.mark.lb


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_a_thousand_instances_pass_round_robin_on_four_networks(
    lb_bench: Callable[..., BenchResult], balancer: str
) -> None:
    result = lb_bench("round_robin", backends=1000, balancer=balancer)
    assert result.passed, verdict_report(result)
    algorithm = result.results[0]
    rows = algorithm.rows
    assert len(rows) == 1000 and all(row.requests >= 1 for row in rows), [r.requests for r in rows][:20]
    hosts = {row.address.rsplit(":", 1)[0] for row in rows}
    assert len(hosts) == 1000 and {host.rsplit(".", 1)[0] for host in hosts} == {
        "127.0.1", "127.0.2", "127.0.3", "127.0.4",
    }, sorted(hosts)[:5]  # fmt: skip
    order = next(v for v in algorithm.verdicts if v.check == "sequential requests follow the exact order")
    assert order.passed and order.observed["requests"] == 2000, order.summary
