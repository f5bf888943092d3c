"""The ``harness`` command as a user runs it: exit codes, one-line errors, nothing left running."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.access_log import read_access_log
from harness.balancers.nginx.config import load_config as load_nginx_config
from harness.cluster import Cluster
from harness.infra import shipped_dir, shipped_locustfile
from harness.processes import alive, wait_gone
from harness.readiness import WaitStrategy
from harness.results.store import new_run_dir

pytestmark = pytest.mark.lb
HARNESS = [sys.executable, "-m", "harness.cli.main"]


def harness(*args: str, results: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args, "--results-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def journal_pids(results: Path) -> list[int]:
    pids: list[int] = []
    for journal in results.glob("*/*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            pids += json.loads(line).get("pids", [])
    return pids


# Runs that stop at their input, one after another in one interpreter that has imported the
# command once (as lb_bench runs benches in pytest's): the import takes about 4 s, nearly all
# of what such a run takes. Each run has its own argv (as python -m sets it), environment,
# exit code, stdout and stderr. Whatever the interpreter prints outside the runs is added to
# the runs' stderr (what it printed at import, to every run's), and at its exit fails the
# module's last test.
RUNNER = r"""
import json, os, sys, traceback

replies = os.fdopen(os.dup(1), "w")
outside = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.dup2(outside, 1)
os.dup2(outside, 2)
import harness.cli.main as cli
sys.stdout.flush()
sys.stderr.flush()
print("ready", file=replies, flush=True)
for line in sys.stdin:
    run = json.loads(line)
    with open(run["stdout"], "wb") as out, open(run["stderr"], "wb") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        environment = dict(os.environ)
        os.environ.clear()
        os.environ.update(run["env"])
        sys.argv = [cli.__file__, *run["args"]]
        try:
            code = cli.main()
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            traceback.print_exc()
            code = 1
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os.environ.clear()
        os.environ.update(environment)
        os.dup2(outside, 1)
        os.dup2(outside, 2)
    print(json.dumps(code), file=replies, flush=True)
"""


class OneInterpreter:
    """``harness`` runs that stop at their input, in the interpreter of RUNNER."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.outside = folder / "outside"
        self.outside.touch()
        self.runs = 0
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(self.outside)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._reply(120) == "ready", self.outside.read_text()
        self.at_import = self.outside.read_text()
        self.read = len(self.at_import)

    def _reply(self, timeout: float) -> str:
        assert self.process.stdout is not None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.process.kill()
            self.process.wait()
            raise subprocess.TimeoutExpired(self.process.args, timeout)
        reply = self.process.stdout.readline()
        assert reply, f"the interpreter exited ({self.process.wait()}): {self.outside.read_text()[-3000:]}"
        return reply.strip()

    def _printed_outside(self) -> str:
        text = self.outside.read_text()
        printed, self.read = text[self.read :], len(text)
        return printed

    def run(self, *args: str, results: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """What ``harness(*args, results=results, env=env)`` returns."""
        assert self.process.stdin is not None
        self.runs += 1
        out, err = self.folder / f"{self.runs}.stdout", self.folder / f"{self.runs}.stderr"
        argv = [*args, "--results-dir", str(results)]
        run = {"args": argv, "env": {**os.environ, **(env or {})}, "stdout": str(out), "stderr": str(err)}
        self.process.stdin.write(json.dumps(run) + "\n")
        self.process.stdin.flush()
        code = int(self._reply(120))
        stderr = self.at_import + err.read_text() + self._printed_outside()
        return subprocess.CompletedProcess([*HARNESS, *argv], code, out.read_text(), stderr)

    def close(self) -> str:
        """Stops the interpreter; returns what it printed at its exit."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return f"exit code {self.process.returncode}\n" * (self.process.returncode != 0) + self._printed_outside()


@pytest.fixture(scope="module")
def one_interpreter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneInterpreter]:
    interpreter = OneInterpreter(tmp_path_factory.mktemp("one-interpreter"))
    yield interpreter
    at_exit = interpreter.close()
    assert not at_exit, f"the interpreter of the runs that stop at their input, at its exit:\n{at_exit}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "fastest"], "unknown algorithm 'fastest'"),
        (["--algo", "round_robin", "--backends", "0"], "--backends must be between 1 and 1000, got 0"),
        (["--algo", "weighted", "--backends", "3"], "3 backends cannot be split evenly"),
        (["--algo", "round_robin", "--weights", "3,1"], "--weights gives 2 weights for 3 instances"),
        (["--config", "/nonexistent/nginx.conf"], "config file not found: /nonexistent/nginx.conf"),
        (["--algo", "round_robin", "--weights", "x"], "weights must be integers"),
        (["--scenario", "nope"], "scenario not found: nope (shipped scenarios: blackhole, fail, failover"),
        (["--algo", "round_robin", "--port", "70000"], "--port must be between 1 and 65535"),
        (["--algo", "round_robin", "--balancer", "envoy"], "unknown balancer 'envoy'; choose from nginx, haproxy"),
        (["--algo", "random", "--balancer", "haproxy"], "no shipped haproxy config for random: HAProxy's"),
        (["--algo", "round_robin", "--driver", "wrk", "--balancer", "client"], "--driver wrk measures capacity"),
        (["--algo", "round_robin", "--rate", "0"], "--rate must be above 0"),
        (["--algo", "random", "--false-alarm-rate", "1"], "--false-alarm-rate must be above 0 and below 1, got 1"),
        (["--algo", "round_robin", "--balancer", "client", "--load-workers", "2"], "drop --load-workers"),
        (["--balancer", "client", "--config", str(shipped_dir() / "nginx" / "nginx-round-robin.conf")], "not a TOML"),
        (["--runtime", "k8s", "--balancer", "haproxy"], "--runtime k8s runs the topology's nginx Deployment"),
        (["--runtime", "k8s", "--algo", "ip_hash"], "ip_hash cannot be judged through a port-forward"),
        (["--runtime", "k8s", "--algo", "weighted"], "no Kubernetes overlay for weighted"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(
    one_interpreter: OneInterpreter, tmp_path: Path, args: list[str], message: str
) -> None:
    result = one_interpreter.run("bench", *args, results=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert journal_pids(tmp_path) == [] or not any(alive(pid) for pid in journal_pids(tmp_path))


def test_the_k8s_runtime_without_a_cluster_says_so_in_one_line(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    result = one_interpreter.run("bench", "--runtime", "k8s", "--algo", "round_robin", results=tmp_path,
                                 env={"KUBECONFIG": str(tmp_path / "no-kubeconfig")})  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and "no Kubernetes cluster configured" in lines[0], result.stderr


def test_ui_serves_on_loopback_unless_told_otherwise(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    result = one_interpreter.run("ui", "--web-host", "0.0.0.0", results=tmp_path)
    assert result.returncode == 2 and "--web-host 0.0.0.0 is not a loopback address" in result.stderr, result.stderr
    assert not list(tmp_path.glob("*")), "nothing may start for bad input"


def test_locustfile_starts_its_own_cluster_and_stops_it(tmp_path: Path) -> None:
    locustfile = shipped_locustfile()
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--algo", "round_robin", "--headless",
         "-u", "3", "-r", "3", "-t", "2s", "--lb-results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "round_robin on nginx: http://127.0.0.1:" in result.stdout, result.stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines() if "api-gateway-" in line}
    assert set(counts) == {"api-gateway-1", "api-gateway-2", "api-gateway-3"} and min(counts.values()) > 0, counts
    pids = journal_pids_flat(tmp_path)
    assert pids and wait_gone(pids) == [], f"left running: {[p for p in pids if alive(p)]}"


def test_locustfile_refuses_a_host_outside_loopback_unless_owned(tmp_path: Path) -> None:
    locustfile = shipped_locustfile()
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--host", "http://10.1.2.3:80", "--headless"]
    result = subprocess.run([*command, "-t", "1s"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "--host http://10.1.2.3:80 is outside 127.0.0.0/8: pass --i-own-this-host" in result.stderr


# Locust logs this when its --run-time timer fires, before it stops the users.
RUN_TIME_REACHED = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] .*--run-time limit reached", re.MULTILINE)


def load_window(access_log: Path, locust_log: str) -> tuple[float, int]:
    """Seconds from the start of the first load request to the start of the last one begun
    before Locust's run-time timer fired, as nginx logged them; and how many began after it.

    Locust takes a moment to stop its users (0.2 s on a loaded machine), in which a user
    whose response came in may begin one more request: that is the stop, not the load the
    run time asks for. Requests are what count, not the process's time, which includes the
    locustfile's imports and the cluster's start.
    """
    (stamp,) = RUN_TIME_REACHED.findall(locust_log)
    fired = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # Locust logs local time
    log = read_access_log(access_log)
    load = log[log["uri"] == "/api/count"]  # not the cluster's /api/health probes
    starts = load["msec"] - load["request_time"]
    during = starts[starts <= fired]
    after = int((starts > fired).sum())
    return (float(during.max() - during.min()) if len(during) else 0.0), after  # 0: the timer fired first


@pytest.mark.parametrize("target", ["--algo", "--host"])
def test_locustfile_loads_for_the_run_time_it_is_given(tmp_path: Path, target: str) -> None:
    # gevent's loop clock, stale after the locustfile's imports, made Locust's run-time timer
    # fire early by the imports' time. With --algo, starting the cluster turns the loop and
    # refreshes the clock; with --host nothing does.
    command = [sys.executable, "-m", "locust", "-f", str(shipped_locustfile()), "--headless", "-u", "5", "-t", "3s"]
    if target == "--algo":
        result = subprocess.run([*command, "--algo", "round_robin", "--lb-results-dir", str(tmp_path)],
                                capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        (access_log,) = tmp_path.glob("*/access.log")
    else:
        with Cluster(load_nginx_config(shipped_config(ALGORITHMS["round_robin"])), tmp_path / "cluster") as cluster:
            result = subprocess.run([*command, "--host", cluster.url],
                                    capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        access_log = tmp_path / "cluster" / "access.log"  # complete once nginx has stopped
    assert result.returncode == 0, result.stderr
    window, after = load_window(access_log, result.stderr)
    assert abs(window - 3.0) <= 0.1, (
        f"-t 3s: expected 3 s +- 0.1 s of load, observed {window:.3f} s "
        f"(and {after} requests begun while Locust stopped); Locust's log:\n{result.stderr[-3000:]}"
    )


def journal_pids_flat(results: Path) -> list[int]:
    """The pids in the journals of run directories directly under ``results``."""
    return [
        pid
        for journal in results.glob("*/journal.jsonl")
        for line in journal.read_text().splitlines()
        for pid in json.loads(line).get("pids", [])
    ]


def test_up_refuses_client_side_balancing_which_has_no_address(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    result = one_interpreter.run("up", "--balancer", "client", results=tmp_path)
    assert result.returncode == 2 and "client-side balancing has no address" in result.stderr, result.stderr


def test_a_scenario_with_an_unknown_fault_is_named(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration = 5\n[[faults]]\nat = 1\nkind = "meteor"\n')
    result = one_interpreter.run("bench", "--scenario", str(scenario), results=tmp_path / "results")
    assert result.returncode == 2, result.stderr
    assert f"{scenario} fault 1: unknown fault 'meteor'" in result.stderr, result.stderr


def test_a_scenario_instance_the_run_does_not_have_is_named(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration = 2\n[[faults]]\nat = 1\nkind = "kill"\ninstance = 7\n')
    result = one_interpreter.run(
        "bench", "--algo", "round_robin", "--scenario", str(scenario), results=tmp_path / "results"
    )
    assert result.returncode == 2, result.stderr
    assert "names instance 7, but the run has 3 instances" in result.stderr, result.stderr
    assert journal_pids(tmp_path / "results") == [], "nothing may start before the scenario is checked"


def test_a_port_in_use_is_named(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = one_interpreter.run("bench", "--algo", "round_robin", "--port", str(port), results=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert wait_gone(journal_pids(tmp_path)) == []


def test_missing_nginx_says_how_to_install(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    result = one_interpreter.run(
        "bench", "--algo", "round_robin", results=tmp_path, env={"HARNESS_NGINX": "/nonexistent/nginx"}
    )
    assert result.returncode == 2, result.stderr
    assert "apt-get install -y nginx-light" in result.stderr, result.stderr


def test_missing_haproxy_says_how_to_install(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    env = {"HARNESS_HAPROXY": "/nonexistent/haproxy"}
    result = one_interpreter.run("bench", "--balancer", "haproxy", "--algo", "round_robin", results=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "apt-get install -y haproxy" in result.stderr, result.stderr


def test_a_config_nginx_rejects_stops_with_nginx_message(one_interpreter: OneInterpreter, tmp_path: Path) -> None:
    config = tmp_path / "bad.conf"
    config.write_text(
        "events {}\nhttp { upstream u { server app:1; frobnicate on; } server { listen 80; "
        "location / { proxy_pass http://u; } } }\n"
    )
    result = one_interpreter.run("bench", "--config", str(config), results=tmp_path / "results")
    assert result.returncode == 2, result.stderr
    assert 'unknown directive "frobnicate"' in result.stderr, result.stderr
    assert not any(alive(pid) for pid in journal_pids(tmp_path / "results"))


def test_a_passing_run_exits_0_and_prints_the_table(tmp_path: Path) -> None:
    result = harness("bench", "--algo", "round_robin", "--duration", "1", results=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "api-gateway-3" in result.stdout and "PASS" in result.stdout and "FAIL" not in result.stdout
    pids = journal_pids(tmp_path)
    assert len(pids) == 5 and wait_gone(pids) == [], pids


def test_a_failing_check_exits_1(tmp_path: Path) -> None:
    result = harness(
        "bench",
        "--algo",
        "least_conn",
        "--config",
        "infra/nginx/nginx-round-robin.conf",
        "--duration",
        "1",
        results=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "short requests avoid the busy instance" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_stops_everything(tmp_path: Path, signum: int) -> None:
    process = subprocess.Popen(
        [*HARNESS, "bench", "--algo", "round_robin", "--duration", "30", "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    # Interrupt once the load runs: the journal names the balancer by then.
    while not any('"balancer"' in j.read_text() for j in tmp_path.glob("*/*/journal.jsonl")):
        assert time.monotonic() < deadline and process.poll() is None, "the run never reached its load phase"
        time.sleep(0.05)
    os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    pids = journal_pids(tmp_path)
    assert len(pids) == 5 and wait_gone(pids) == [], f"left running: {[p for p in pids if alive(p)]}"


def test_an_interrupted_run_keeps_what_it_measured_marked_incomplete(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*HARNESS, "bench", "--algo", "round_robin", "--duration", "30", "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Interrupt in the middle of the load: nginx has logged some thousands of requests by then.
    (access_log,) = WaitStrategy("nginx's access log", timeout=20).wait(
        lambda: [log for log in tmp_path.glob("*/*/access.log") if log.stat().st_size > 100_000] or None
    )
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "marked incomplete" in stderr, stderr
    (run_dir,) = tmp_path.glob("*-round_robin-*")
    top = json.loads((run_dir / "summary.json").read_text())
    algorithm = json.loads((run_dir / "round_robin" / "summary.json").read_text())
    assert top["complete"] is False and algorithm["complete"] is False and algorithm["interrupted"] == "interrupted"
    measured = pd.read_parquet(run_dir / "round_robin" / "requests.parquet")
    assert len(measured) > 0 and algorithm["counts"]["requests"] == len(measured), algorithm["counts"]
    assert "Incomplete: the run was interrupted" in (run_dir / "report.html").read_text()
    # harness report reads a half-done run too.
    again = subprocess.run([*HARNESS, "report", str(run_dir)], capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and "report.html" in again.stdout, again.stderr
    assert access_log.exists()


def test_a_run_directory_is_never_reused(tmp_path: Path) -> None:
    first, second = new_run_dir(tmp_path, "same"), new_run_dir(tmp_path, "same")
    assert first != second and first.is_dir() and second.is_dir()


def test_an_interrupted_scenario_rolls_its_fault_back_and_stops_everything(tmp_path: Path) -> None:
    scenario = tmp_path / "hang.toml"
    scenario.write_text('duration = 30\n[[faults]]\nat = 0.5\nkind = "hang"\ninstance = 1\n')
    results = tmp_path / "results"
    process = subprocess.Popen(
        [*HARNESS, "bench", "--algo", "health_checks", "--scenario", str(scenario), "--results-dir", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any('"fault"' in j.read_text() for j in results.glob("*/*/journal.jsonl")):
        assert time.monotonic() < deadline and process.poll() is None, "the fault was never injected"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    (journal,) = results.glob("*/*/journal.jsonl")
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events.index("rollback") > events.index("fault"), events
    pids = journal_pids(results)
    assert wait_gone(pids) == [], f"left running: {[p for p in pids if alive(p)]}"


def test_compare_balancers_prints_and_saves_every_balancer_side_by_side(tmp_path: Path) -> None:
    scenario = tmp_path / "kill.toml"
    scenario.write_text(
        'duration = 4\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1\n'
    )
    result = harness(
        "compare-balancers", "--algo", "health_checks", "--scenario", str(scenario), results=tmp_path,
        env={"COLUMNS": "200"},  # one table row per line
    )  # fmt: skip
    # nginx and the client keep the instance out for fail_timeout (30 s), longer than this
    # run: their recovery checks fail, which is what the comparison is there to show.
    assert result.returncode in (0, 1), result.stderr
    table = result.stdout[result.stdout.index("the same faults:") :]
    for measure in ("user requests that reached the failed instance", "client-visible errors", "time to detect (s)"):
        assert measure in table, table
    header = next(line for line in table.splitlines() if "measure" in line)
    assert all(name in header for name in ("nginx", "haproxy", "caddy", "client", "kube-proxy")), header
    (saved,) = tmp_path.glob("*-compare-health_checks-kill-*")
    latency = pd.read_csv(saved / "latency.csv")
    assert list(latency["balancer"]) == ["nginx", "haproxy", "caddy", "client", "kube-proxy"], latency
    assert latency["p50_ms"].notna().all() and latency["extra_hop_p50_ms"].drop(index=3).notna().all(), latency
    failover = pd.read_csv(saved / "failover.csv")
    assert set(failover["measure"]) >= {"client-visible errors", "time to detect (s)"}, failover
    assert "extra hop" in result.stdout and f"comparison saved in {saved}" in result.stdout.replace("\n", "")
