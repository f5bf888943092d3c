"""Long-lived sessions through a real balancer, counted on the instances."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from harness import BenchSpec, open_cluster, prepare
from harness.backends import control
from harness.bench import BenchResult
from harness.checks.sessions import SESSIONS_BALANCED, sessions_within_one
from harness.checks.verdict import Verdict
from harness.load.workload import Workload
from harness.pytest_plugin import verdict_report
from harness.results.store import new_run_dir
from tests.live.fixtures import HOLDER

pytestmark = pytest.mark.lb

WEBSOCKET_CONFIG = """events { worker_connections 1024; }
http {
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream app { least_conn; server app:3000; }
    server {
        listen 80;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
        }
    }
}
"""


def test_least_conn_spreads_websocket_sessions_within_one(tmp_path: Path) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(WEBSOCKET_CONFIG)
    plan = prepare(BenchSpec(algorithms=("least_conn",), config=config, results_dir=tmp_path), command="up")
    with open_cluster(plan, plan.only, new_run_dir(tmp_path, "sessions")) as cluster:
        url = cluster.url.replace("http://", "ws://") + "/api/ws"
        # An asyncio client in a process of its own: this one may run under Locust's gevent patches.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, "7"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
            open_sessions = {
                instance.name: int(control.state(instance)["sessions"]["websocket"])
                for instance in cluster.instances_under_test
            }
        finally:
            holder.communicate("close\n", timeout=30)
    verdict = sessions_within_one(open_sessions)
    assert verdict.passed, verdict.summary
    assert sum(open_sessions.values()) == 7, verdict.summary


SESSION_USERS = 12
SESSION_SECONDS = 6.0


def session_bench(
    lb_bench: Callable[..., BenchResult], algorithm: str, balancer: str, workload: str = "websocket"
) -> BenchResult:
    return lb_bench(
        algorithm, balancer=balancer, users=SESSION_USERS, duration=SESSION_SECONDS, workload=Workload(workload)
    )


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_least_conn_keeps_websocket_sessions_even_under_load(
    lb_bench: Callable[..., BenchResult], balancer: str
) -> None:
    result = session_bench(lb_bench, "least_conn", balancer)
    assert result.passed, verdict_report(result)
    run = result.results[0]
    verdict = next(v for v in run.verdicts if v.check == SESSIONS_BALANCED)
    assert verdict.passed and verdict.observed["snapshots"] >= 10, verdict.summary
    assert set(run.requests["name"]) == {"/api/ws"} and (run.requests["status"] == 101).all()
    sampled = pd.read_csv(result.run_dir / "least_conn" / "sessions.csv")
    assert set(sampled["instance"]) == {instance.name for instance in run.instances}
    # Both views: the instances' own counts and the clients' sessions from their records agree
    # at the consistent snapshots, but for a session caught crossing the balancer.
    consistent = sampled[sampled["consistent"]]
    agree = (consistent["open"] == consistent["clients_open"]).mean()
    assert agree >= 0.9, consistent[consistent["open"] != consistent["clients_open"]].head(10)
    assert result.report is not None and "the clients' view" in result.report.read_text()


@pytest.mark.parametrize(
    ("balancer", "workload"), [("nginx", "websocket"), ("nginx", "mixed"), ("kube-proxy", "websocket")]
)
def test_round_robin_fails_the_session_balance_with_its_numbers(
    lb_bench: Callable[..., BenchResult], balancer: str, workload: str
) -> None:
    """Round robin over exponential session lengths: in simulation (tests/unit/test_sessions.py),
    none of 20,000 runs of 20 session ends kept within the bound; this run has about 30. With
    short requests between the sessions (mixed) the turns the sessions get are the short
    requests' leftovers; kube-proxy's random pick keeps no count at all. Each is a run the seed
    predicts "may overload" an instance, and the check says by how much."""
    result = session_bench(lb_bench, "round_robin", balancer, workload)
    run = result.results[0]
    verdict = next(v for v in run.verdicts if v.check == SESSIONS_BALANCED)
    assert verdict.passed is False, verdict_report(result)
    assert verdict.observed["worst"]["spread"] >= 2 and "worst" in verdict.summary, verdict.summary
    # The sessions went through the balancer and every one named its instance, whatever the balancer.
    sessions = run.requests[run.requests["name"] == "/api/ws"]
    assert len(sessions) >= SESSION_USERS and (sessions["status"] == 101).all(), run.requests["status"].value_counts()
    assert set(sessions["instance"]) == {instance.name for instance in run.instances}


def scale_out_verdict(result: BenchResult) -> Verdict:
    return next(v for v in result.results[0].verdicts if v.check.startswith("after the scale-out to 4"))


def test_haproxy_least_conn_sends_the_new_sessions_to_the_new_instance(lb_bench: Callable[..., BenchResult]) -> None:
    """The server is added through HAProxy's runtime API: its connection counts are kept."""
    result = lb_bench("least_conn", balancer="haproxy", scenario="websocket-scale-out", users=SESSION_USERS)
    assert result.passed, verdict_report(result)
    verdict = scale_out_verdict(result)
    assert verdict.observed["beyond_fewest"] == 0 and verdict.observed["on_new"] >= 2, verdict.summary


def test_round_robin_sends_new_sessions_to_the_full_instances_too(lb_bench: Callable[..., BenchResult]) -> None:
    """Round robin's next three picks after the first on the new instance go to the three old ones,
    each holding about four sessions against the new one's one: passing would take each of them
    losing two sessions within that second."""
    result = lb_bench("round_robin", balancer="haproxy", scenario="websocket-scale-out", users=SESSION_USERS)
    verdict = scale_out_verdict(result)
    assert verdict.passed is False, verdict_report(result)
    assert verdict.observed["beyond_fewest"] >= 1 and "worst: at" in verdict.summary, verdict.summary


def reload_verdict(result: BenchResult) -> Verdict:
    return next(v for v in result.results[0].verdicts if "open at the reload" in v.check)


def test_streams_open_at_an_nginx_reload_survive_it(lb_bench: Callable[..., BenchResult]) -> None:
    result = lb_bench("least_conn", scenario="sse-reload", users=SESSION_USERS)
    assert result.passed, verdict_report(result)
    verdict = reload_verdict(result)
    assert verdict.observed["open_at_reload"] >= 5 and verdict.observed["cut"] == 0, verdict.summary
    # The old workers live until the last stream they hold has ended (the client reads its end a
    # little after the worker has closed it: half a second allowed).
    assert verdict.observed["old_workers_lived_s"] >= verdict.observed["last_session_ended_s"] - 0.5, verdict.summary
    handover = next(v for v in result.results[0].verdicts if "goes to an old worker" in v.check)
    assert handover.passed and handover.observed["after_reload"] >= 1, handover.summary


def test_haproxy_hard_stop_after_cuts_the_streams_open_at_a_reload(
    lb_bench: Callable[..., BenchResult], tmp_path: Path
) -> None:
    """hard-stop-after 1s: the old process ends the streams it holds a second after the reload.
    Streams last about 3 s (exponential): all of the ten or so open at the reload ending within
    that second happens about once in 60,000 runs."""
    shipped = Path(__file__).resolve().parents[2] / "harness" / "shipped" / "infra" / "haproxy"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        (shipped / "haproxy-least-conn.cfg").read_text().replace("global\n", "global\n    hard-stop-after 1s\n", 1)
    )
    result = lb_bench("least_conn", balancer="haproxy", config=config, scenario="sse-reload", users=SESSION_USERS)
    verdict = reload_verdict(result)
    assert verdict.passed is False, verdict_report(result)
    assert verdict.observed["cut"] >= 1 and "first cut" in verdict.summary, verdict.summary


def test_a_killed_instances_sessions_end_and_new_ones_reach_the_others(lb_bench: Callable[..., BenchResult]) -> None:
    result = lb_bench("least_conn", scenario="websocket-kill", users=SESSION_USERS)
    assert result.passed, verdict_report(result)
    verdict = next(v for v in result.results[0].verdicts if "was gone reach the other instances" in v.check)
    observed = verdict.observed
    assert observed["opened_while_gone"] >= 3 and observed["on_lost"] == 0 and observed["failed"] == 0, verdict.summary
    # It held about a third of the sessions: every one of them ended when it went, attributed to it.
    assert observed["held"] >= 1 and observed["held_ended_early"] == observed["held"], verdict.summary


def test_uploads_while_an_instance_is_slow_stay_even_under_least_conn_and_pile_up_under_round_robin(
    lb_bench: Callable[..., BenchResult],
) -> None:
    """The slow instance holds each upload 6 s against 1 s: least_conn keeps the open ones within
    one of even and sends it a sixth as many; round robin's turns leave most users' uploads there
    within a few seconds (each turn on it outlasts a whole round of the others)."""

    def while_slow(result: BenchResult) -> Verdict:
        return next(v for v in result.results[0].verdicts if v.check.endswith("is slow"))

    least = lb_bench("least_conn", scenario="upload-slow-instance", users=SESSION_USERS)
    assert least.passed, verdict_report(least)
    begun = while_slow(least).observed["begun"]
    assert begun["api-gateway-2"] * 3 < min(begun["api-gateway-1"], begun["api-gateway-3"]), begun
    turns = lb_bench("round_robin", scenario="upload-slow-instance", users=SESSION_USERS)
    verdict = while_slow(turns)
    assert verdict.passed is False and verdict.observed["worst"]["open"]["api-gateway-2"] >= 6, verdict.summary


def test_a_hung_instance_stalls_its_sessions_and_the_others_serve_the_new_ones(
    lb_bench: Callable[..., BenchResult],
) -> None:
    """Round robin keeps sending new sessions to the hung instance (one pick in three), and
    each waits for it to run again; the hang (4 s) is shorter than proxy_read_timeout (60 s),
    so nothing times out and nginx never takes it out."""
    result = lb_bench("round_robin", scenario="websocket-hang", users=SESSION_USERS)
    verdicts = {v.check: v for v in result.results[0].verdicts}
    hung = verdicts["WebSocket sessions opened while api-gateway-2 hung are served by the others"]
    assert hung.passed, verdict_report(result)
    observed = hung.observed
    assert observed["waited_on_hung"] >= 1 and observed["on_others"] >= 2, hung.summary
    assert observed["held"] >= 1 and observed["held_stalled_median_s"] >= 3.5, hung.summary
    waited = next(v for v in verdicts.values() if "ended before proxy_read_timeout" in v.check)
    assert waited.passed, waited.summary
