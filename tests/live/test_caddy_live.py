"""Caddy as a balancer of the harness: a user's Caddyfile runs as Caddy reads it (through
`caddy adapt`) with its Host and path, its classic mistake is caught at once, a claim its
policy does not make fails with its numbers, and `caddy validate` of a rendered config
writes nothing outside the run and reaches nothing outside loopback."""

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.caddy.config import caddy_binary, load_config
from harness.balancers.caddy.render import RenderSettings, render
from harness.bench import BenchResult
from harness.errors import StartupError
from harness.pytest_plugin import verdict_report
from harness.runtimes.base import Instance

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]
CONFIGS = Path(__file__).parents[1] / "configs" / "caddy"


def test_a_users_site_runs_with_its_host_and_path(lb_bench: Bench) -> None:
    result = lb_bench(balancer="caddy", config=CONFIGS / "shop.Caddyfile", duration=1)
    assert result.passed, verdict_report(result)
    run = result.results[0]
    verdicts = {v.check: v for v in run.verdicts}
    assert verdicts["sequential requests follow the exact order"].passed, verdicts
    assert any("(Host: shop.example.com) under /api/" in note for note in run.notes), run.notes
    assert {row.instance for row in run.rows if row.requests} == {"api-a", "api-b"}


def test_respond_before_reverse_proxy_is_caught_at_once(lb_bench: Bench) -> None:
    with pytest.raises(StartupError) as refused:
        lb_bench(balancer="caddy", config=CONFIGS / "respond-first.Caddyfile", duration=1)
    message = str(refused.value)
    assert "(Host: shop.example.com) under /api/" in message and "from the balancer itself" in message, message


def test_round_robin_claims_fail_on_the_random_policy_with_their_numbers(lb_bench: Bench) -> None:
    # 12 random picks over 3 upstreams follow one fixed cycle with probability (1/3)**11, about 6 in a million.
    random_policy = shipped_config(ALGORITHMS["random"], "caddy")
    result = lb_bench("round_robin", balancer="caddy", config=random_policy, duration=1)
    verdict = next(v for v in result.results[0].verdicts if v.check == "sequential requests follow the exact order")
    assert verdict.passed is False and re.search(r"\d", verdict.summary) and verdict.observed, verdict


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install -y strace)")
def test_caddy_validate_writes_nothing_outside_the_run_and_reaches_nothing_outside_loopback(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "shop.Caddyfile")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    instances = [Instance(s, s, f"127.0.1.{i}", 20000 + i, 21000 + i, 1) for i, s in enumerate(config.services, 1)]
    rendered, _ = render(config, instances, RenderSettings(run_dir, {"srv0": "127.0.0.1:30000"}, "127.0.0.1:30001"))
    path = run_dir / "caddy.json"
    path.write_text(__import__("json").dumps(rendered))
    trace = tmp_path / "trace"
    home = run_dir / "home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "d"),
        "XDG_CONFIG_HOME": str(home / "c"),
    }
    argv = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=connect,bind,openat",
        "-o",
        str(trace),
        caddy_binary(),
        "validate",
        "--config",
        str(path),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    text = trace.read_text()
    inet = [line for line in text.splitlines() if "AF_INET" in line]
    assert not [line for line in inet if not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line)], inet
    written = re.findall(r'openat\([^"]*"([^"]+)", [^)]*O_(?:WRONLY|RDWR|CREAT)', text)
    assert [p for p in written if not p.startswith((str(run_dir), "/dev/"))] == [], written


KILL = 'duration = 5\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'


def test_a_killed_upstream_is_taken_out_retried_around_and_brought_back(lb_bench: Bench, tmp_path: Path) -> None:
    scenario = tmp_path / "kill.toml"
    scenario.write_text(KILL)
    result = lb_bench("health_checks", balancer="caddy", scenario=str(scenario))
    assert result.passed, verdict_report(result)
    checks = [v.check for v in result.results[0].verdicts]
    for wanted in ("GET requests lose nothing", "taken out after max_fails failures", "back in rotation"):
        assert any(wanted in check for check in checks), checks
    assert (result.results[0].run_dir / "proxy.log").stat().st_size > 0


def test_without_lb_try_duration_a_kill_costs_requests_with_their_numbers(lb_bench: Bench, tmp_path: Path) -> None:
    config = tmp_path / "Caddyfile"
    text = shipped_config(ALGORITHMS["health_checks"], "caddy").read_text()
    assert "lb_try_duration 1s" in text
    config.write_text(text.replace("lb_try_duration 1s", ""))
    scenario = tmp_path / "kill.toml"
    scenario.write_text(KILL)
    result = lb_bench("health_checks", balancer="caddy", config=config, scenario=str(scenario))
    verdict = next(v for v in result.results[0].verdicts if "GET requests lose nothing" in v.check)
    assert verdict.passed is False and re.search(r"[1-9]\d* client errors", verdict.summary), verdict
