"""Configs of the shapes users bring, run as they are with no --algo: every claim inferred
from the config holds; the same config with one line changed fails the matching check
with its numbers (held to the original's claims with --claims-from); and nginx -t on any
rendered config opens no socket outside loopback."""

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.balancers.nginx.balancer import nginx_binary
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.render import RenderSettings, listen_keys, render_config
from harness.balancers.tls import RunCertificates
from harness.bench import BenchResult
from harness.checks.verdict import Verdict
from harness.errors import StartupError
from harness.pytest_plugin import verdict_report
from harness.runtimes.base import Instance
from harness.topology import plan_instances, plan_side_instances

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]
CONFIGS = Path(__file__).parents[1] / "configs"

# Each config, and the checks its claims must bring (each must pass).
EXPECTED_CHECKS = {
    "compose": ["sequential requests follow the exact order"],
    "prod-tls": [
        "listen 80 answers 301 to https",
        "short requests avoid the busy instance",
        "upstream keepalive reuses connections",
    ],
    "two-upstreams": ["short requests avoid the busy instance"],
    "sites": ["sequential requests follow the exact order"],
    "unix-socket": ["sequential requests follow the exact order"],
    "backup-down": [
        "backup server app-c gets no request while a primary serves",
        "down server app-d gets no request",
        "backup takes over when every primary is down",
        "primaries take back from backup after they recover",
    ],
    "hash-key": [
        "one $http_x_tenant, one instance",
        "distinct $http_x_tenant values spread over instances",
        "consistent hashing moves only the removed instance's keys",
    ],
    "random-two": ["short requests avoid the busy instance", "spread under load matches even shares"],
    "max-conns": ["max_conns: no instance holds more requests than its limit"],
    "dual-stack": ["sequential requests follow the exact order"],
    "api-prefix": ["sequential requests follow the exact order", "upstream keepalive reuses connections"],
    "ip-hash-weights": ["each client sticks to one instance", "down server app-4 gets no request"],
    "least-conn-weights": ["sequential requests follow the exact order", "short requests avoid the busy instance"],
    "tls-upstream": ["sequential requests follow the exact order", "clients saw no errors"],
}

# One line changed (in the config's folder, file, before, after), and the check of the original's claims it fails.
BROKEN = {
    "Connection close passed on": ("prod-tls", "nginx.conf", "''      '';", "''      close;",
                                   "upstream keepalive reuses connections"),
    "backup made primary": ("backup-down", "nginx.conf", "server app-c:8080 backup;", "server app-c:8080;",
                            "backup server app-c gets no request while a primary serves"),
    "down removed": ("backup-down", "nginx.conf", "server app-d:8080 down;", "server app-d:8080;",
                     "down server app-d gets no request"),
    "consistent removed": ("hash-key", "nginx.conf", "hash $http_x_tenant consistent;", "hash $http_x_tenant;",
                           "consistent hashing moves only the removed instance's keys"),
    "max_conns raised": ("max-conns", "nginx.conf", "max_conns=4", "max_conns=100",
                         "max_conns: no instance holds more requests than its limit"),
}  # fmt: skip


def verdicts_of(result: BenchResult) -> dict[str, Verdict]:
    return {verdict.check: verdict for verdict in result.results[0].verdicts}


def test_every_shape_has_a_config() -> None:
    assert sorted(EXPECTED_CHECKS) == sorted(path.name for path in CONFIGS.iterdir() if (path / "nginx.conf").is_file())
    assert len(EXPECTED_CHECKS) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED_CHECKS))
def test_a_users_config_runs_as_it_is_and_keeps_its_inferred_claims(lb_bench: Bench, name: str) -> None:
    result = lb_bench(config=CONFIGS / name / "nginx.conf", duration=1)
    assert result.passed, verdict_report(result)
    verdicts = verdicts_of(result)
    for check in EXPECTED_CHECKS[name]:
        assert check in verdicts, f"{name}: no check {check!r}; checks: {sorted(verdicts)}"
        assert verdicts[check].passed, f"{name}: {verdicts[check]}"
    run = result.results[0]
    assert run.notes and run.notes[0].startswith("claims inferred from upstream"), run.notes
    assert (run.run_dir / "rewrites.txt").is_file()


@pytest.mark.parametrize("change", sorted(BROKEN))
def test_a_changed_line_fails_the_claim_it_breaks_with_its_numbers(
    lb_bench: Bench, tmp_path: Path, change: str
) -> None:
    name, file, before, after, check = BROKEN[change]
    folder = tmp_path / name
    shutil.copytree(CONFIGS / name, folder)
    text = (folder / file).read_text()
    assert before in text
    (folder / file).write_text(text.replace(before, after))
    result = lb_bench(config=folder / "nginx.conf", claims_from=CONFIGS / name / "nginx.conf", duration=1)
    verdict = verdicts_of(result).get(check)
    assert verdict is not None and verdict.passed is False, verdict_report(result)
    assert re.search(r"\d", verdict.summary) and verdict.observed, verdict


def _instances(config_path: Path) -> list[Instance]:
    config = load_config(config_path)
    specs = plan_instances(config.services, None)
    specs += plan_side_instances(config.side_services, len(specs))
    return [Instance(s.name, s.service, s.host, 20000 + i, 21000 + i, 1) for i, s in enumerate(specs)]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install -y strace)")
@pytest.mark.parametrize("name", sorted(EXPECTED_CHECKS))
def test_nginx_t_on_a_rendered_config_opens_no_socket_outside_loopback(tmp_path: Path, name: str) -> None:
    config = load_config(CONFIGS / name / "nginx.conf")
    run_dir = tmp_path / "run"
    (run_dir / "temp").mkdir(parents=True)
    sockets = {key: f"127.0.0.1:{30000 + i}" for i, key in enumerate(listen_keys(config))}
    settings = RenderSettings(
        run_dir=run_dir, listen="127.0.0.1:30000", workers=1, listens=sockets,
        certificates=RunCertificates(run_dir / "tls"),
    )  # fmt: skip
    conf = run_dir / "nginx.conf"
    conf.write_text(render_config(config, _instances(CONFIGS / name / "nginx.conf"), settings).text)
    trace = tmp_path / "trace"
    nginx = [nginx_binary(), "-t", "-q", "-p", str(run_dir), "-e", str(run_dir / "error.log"), "-c", str(conf)]
    argv = ["strace", "-f", "-qq", "-e", "trace=connect,bind,sendto,openat", "-o", str(trace), *nginx]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    calls = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    outside = [line for line in calls if not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line)]
    assert not outside, outside
    opened_to_write = re.findall(r'openat\([^"]*"([^"]+)", [^)]*O_(?:WRONLY|RDWR|CREAT)', trace.read_text())
    assert opened_to_write, "strace saw no file nginx -t writes (its pid or error log): the trace is not working"
    assert [path for path in opened_to_write if not path.startswith((str(run_dir), "/dev/"))] == []


def test_upstream_all_judges_each_routed_upstream_in_its_own_folder(lb_bench: Bench) -> None:
    result = lb_bench(config=CONFIGS / "two-upstreams" / "nginx.conf", upstream="all", duration=1)
    assert result.passed, verdict_report(result)
    assert [(run.run_dir.name, run.algorithm) for run in result.results] == [
        ("api-weighted", "weighted"),
        ("web-least_conn", "least_conn"),
    ]
    assert "upstream `api`" in result.results[0].notes[0] and "upstream `web`" in result.results[1].notes[0]


def test_a_route_the_balancer_answers_itself_is_refused_at_once_naming_route_and_answer(
    lb_bench: Bench, tmp_path: Path
) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(
        "upstream app { server app:3000; }\n"
        "server { listen 80; server_name shop.example;\n location / { deny all; proxy_pass http://app; } }\n"
    )
    with pytest.raises(StartupError) as refused:
        lb_bench(config=config, duration=1)
    message = str(refused.value)
    assert "through http://127.0.0.1:" in message and "(Host: shop.example)" in message, message
    assert "got HTTP 403 from the balancer itself" in message and "--route" in message, message


def test_unix_socket_servers_are_instances_serving_on_sockets_in_the_run(lb_bench: Bench, tmp_path: Path) -> None:
    folder = tmp_path / "unix-socket"
    shutil.copytree(CONFIGS / "unix-socket", folder)
    conf = folder / "nginx.conf"
    conf.write_text(conf.read_text().replace("fail_timeout=0;", "max_fails=1 fail_timeout=2s;"))
    scenario = tmp_path / "kill.toml"
    scenario.write_text(
        'duration = 5\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'
    )
    result = lb_bench(config=conf, scenario=str(scenario))
    assert result.passed, verdict_report(result)
    run = result.results[0]
    log = (run.run_dir / "access.log").read_text().splitlines()
    addresses = {address for line in log for address in line.split("\t")[5].split(", ")} - {"app_server"}
    link = run.run_dir / "sockets"
    folder = Path(os.readlink(link)) if link.is_symlink() else link
    # Expected: nginx reached the instances only on their sockets in the run's socket folder.
    assert addresses == {f"unix:{folder}/gunicorn-{n}.sock" for n in (1, 2, 3)}, addresses
    assert not link.is_symlink() or not folder.exists(), f"{folder}, the run's socket folder, outlived the run"
    assert "gunicorn-2" in {row.instance for row in run.rows if row.requests > 0}


def test_proxy_pass_https_reaches_instances_that_serve_tls_and_verifies_them(lb_bench: Bench) -> None:
    result = lb_bench(config=CONFIGS / "tls-upstream" / "nginx.conf", duration=1)
    assert result.passed, verdict_report(result)
    run = result.results[0]
    rendered = (run.run_dir / "nginx.conf").read_text()
    # No error with nginx verifying the instances' certificate: they served TLS, signed by the run's CA.
    assert "proxy_pass https://api.internal;" in rendered and "proxy_ssl_verify on;" in rendered
    assert f"proxy_ssl_trusted_certificate {run.run_dir / 'tls-instances' / 'ca.pem'};" in rendered
    assert "client.pem" not in rendered
