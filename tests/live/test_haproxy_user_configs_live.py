"""HAProxy configs of the shapes users bring, run as they are: several frontends and backends,
use_backend rules, a redirect frontend beside a TLS one, backup and disabled servers. Each
runs with no --algo and keeps its inferred claims; a changed line fails the claim it breaks;
haproxy's complaint names the user's line; and `haproxy -c` on a rendered config reaches
nothing outside loopback."""

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.balancers.haproxy.balancer import HaproxyBalancer, haproxy_binary
from harness.balancers.haproxy.config import load_config
from harness.balancers.haproxy.render import RenderSettings, plan_listens, render_config
from harness.balancers.tls import RunCertificates
from harness.bench import BenchResult
from harness.checks.verdict import Verdict
from harness.errors import ConfigError
from harness.pytest_plugin import verdict_report
from harness.runtimes.base import Instance
from harness.topology import plan_instances, plan_side_instances

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]
CONFIGS = Path(__file__).parents[1] / "configs" / "haproxy"

# Each config, and the checks its claims must bring (each must pass).
EXPECTED_CHECKS = {
    "backup-disabled.cfg": [
        "backup server app-c gets no request while a primary serves",
        "down server app-d gets no request",
        "backup takes over when every primary is down",
        "primaries take back from backup after they recover",
    ],
    "two-backends.cfg": ["sequential requests follow the exact order"],
    "tls-redirect.cfg": ["listen http-in :80 answers 301 to https", "sequential requests follow the exact order"],
    "production.cfg": ["sequential requests follow the exact order", "clients saw no errors"],
}


def verdicts_of(result: BenchResult) -> dict[str, Verdict]:
    return {verdict.check: verdict for verdict in result.results[0].verdicts}


@pytest.mark.parametrize("name", sorted(EXPECTED_CHECKS))
def test_a_users_haproxy_config_runs_as_it_is_and_keeps_its_inferred_claims(lb_bench: Bench, name: str) -> None:
    result = lb_bench(balancer="haproxy", config=CONFIGS / name, duration=1)
    assert result.passed, verdict_report(result)
    verdicts = verdicts_of(result)
    for check in EXPECTED_CHECKS[name]:
        assert check in verdicts, f"{name}: no check {check!r}; checks: {sorted(verdicts)}"
        assert verdicts[check].passed, f"{name}: {verdicts[check]}"
    run = result.results[0]
    assert run.notes and run.notes[0].startswith("claims inferred from backend"), run.notes
    assert (run.run_dir / "rewrites.txt").is_file()
    if name == "tls-redirect.cfg":
        # HAProxy verified the instances' TLS against the run's CA, and no request failed.
        ca_file = run.run_dir / "tls-instances" / "ca.pem"
        assert f"ssl verify required ca-file {ca_file}" in (run.run_dir / "haproxy.cfg").read_text()


def test_backend_all_judges_each_routed_backend_on_its_own_route(lb_bench: Bench) -> None:
    result = lb_bench(balancer="haproxy", config=CONFIGS / "two-backends.cfg", upstream="all", duration=1)
    assert result.passed, verdict_report(result)
    assert [(run.run_dir.name, run.algorithm) for run in result.results] == [
        ("site-round_robin", "round_robin"),
        ("api-least_conn", "least_conn"),
    ]
    assert "backend `api`" in result.results[1].notes[0] and "/api/" in result.results[1].notes[0]


def test_a_backup_made_primary_fails_the_backup_claim_with_its_numbers(lb_bench: Bench, tmp_path: Path) -> None:
    original = CONFIGS / "backup-disabled.cfg"
    changed = tmp_path / "backup-disabled.cfg"
    text = original.read_text()
    assert "server c app-c:8080 backup" in text
    changed.write_text(text.replace("server c app-c:8080 backup", "server c app-c:8080"))
    result = lb_bench(balancer="haproxy", config=changed, claims_from=original, duration=1)
    verdict = verdicts_of(result).get("backup server app-c gets no request while a primary serves")
    assert verdict is not None and verdict.passed is False, verdict_report(result)
    assert re.search(r"app-c .* got \d+ of \d+ requests", verdict.summary), verdict


def _instances(config_path: Path) -> list[Instance]:
    config = load_config(config_path)
    specs = plan_instances(config.services, None)
    specs += plan_side_instances(config.side_services, len(specs))
    return [Instance(s.name, s.service, s.host, 20000 + i, 21000 + i, 1) for i, s in enumerate(specs)]


def test_haproxys_complaint_names_the_users_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    mode http\nfrontend web\n    bind :80\n    default_backend b\n"
        "backend b\n    balance roundrobin\n    no-such-keyword here\n    server a app:80\n"
    )
    balancer = HaproxyBalancer(load_config(path), tmp_path / "run", port=18099)
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError) as refused:
        balancer.write_config(_instances(path))
    assert "[h.cfg:8]" in str(refused.value) and "no-such-keyword" in str(refused.value), refused.value


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install -y strace)")
@pytest.mark.parametrize("name", sorted(EXPECTED_CHECKS))
def test_haproxy_c_on_a_rendered_config_reaches_nothing_outside_loopback(tmp_path: Path, name: str) -> None:
    config = load_config(CONFIGS / name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    spare = iter(f"127.0.0.1:{30001 + i}" for i in range(20))
    settings = RenderSettings(
        run_dir=run_dir, listen="127.0.0.1:30000", listens=plan_listens(config, "127.0.0.1:30000", spare),
        certificates=RunCertificates(run_dir / "tls"),
    )  # fmt: skip
    conf = run_dir / "haproxy.cfg"
    conf.write_text(render_config(config, _instances(CONFIGS / name), settings).text)
    trace = tmp_path / "trace"
    argv = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=connect,bind,sendto",
        "-o",
        str(trace),
        haproxy_binary(),
        "-c",
        "-f",
        str(conf),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    outside = [line for line in calls if not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line)]
    assert not outside, outside
