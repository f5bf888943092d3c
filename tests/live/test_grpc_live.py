"""gRPC and plain HTTP over long-lived HTTP/2 connections through real balancers: spread per
request, or pinned per connection."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bench import BenchResult
from harness.infra import infra_path
from harness.pytest_plugin import verdict_report

pytestmark = pytest.mark.lb


@pytest.mark.parametrize(
    ("scenario", "config_does"), [("grpc-pinning", "passes gRPC"), ("http2-pinning", "takes HTTP/2")]
)
def test_compare_balancers_prints_h2_spread_by_stream_balancers_and_pinned_by_kube_proxy(
    tmp_path: Path, scenario: str, config_does: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli.main", "compare-balancers", "--scenario", scenario,
         "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    table = done.stdout[done.stdout.index("HTTP/2: where the calls of one connection went") :]
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.startswith("│")}
    for balancer in ("nginx", "haproxy"):
        assert "3 of 3 instances" in rows[balancer] and "spreads per call: PASS" in rows[balancer], table
    assert "1 of 3 instances" in rows["kube-proxy"] and "pins per connection: PASS" in rows["kube-proxy"], table
    # Every connection kube-proxy carried stayed on one instance; under nginx every one reached all three.
    assert "on 1 instance" in rows["kube-proxy"] and "on 2 instances" not in rows["kube-proxy"], table
    assert f"caddy: not run: no shipped config {config_does}" in done.stdout


def test_a_grpc_pass_upstream_keyed_on_the_client_fails_the_spread_it_was_claimed_to_give(
    lb_bench: Callable[..., BenchResult], tmp_path: Path
) -> None:
    """ip_hash keys on the client's address, which one connection never changes: claimed as
    round robin, one connection's 30 calls all reach one instance, and the check says so."""
    config = tmp_path / "nginx.conf"
    config.write_text(
        infra_path("nginx", "nginx-grpc.conf")
        .read_text()
        .replace("server api-grpc:50051;", "ip_hash;\n        server api-grpc:50051;")
    )
    result = lb_bench("round_robin", config=config, scenario="grpc-pinning", users=4)
    verdict = next(v for v in result.results[0].verdicts if "calls of one HTTP/2 connection" in v.check)
    assert verdict.passed is False, verdict_report(result)
    assert "reached 1 of 3 instances" in verdict.summary and verdict.observed["calls"] == 30, verdict.summary
