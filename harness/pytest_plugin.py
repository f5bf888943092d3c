"""pytest plugin: ``@pytest.mark.lb(...)`` turns a test into a live bench; ``lb_bench`` runs one in-process.

Loaded through the ``pytest11`` entry point in every pytest session of an environment that
has lb-harness installed, so importing it costs nothing: no Locust, no gevent, no
monkey-patching. The harness is imported only when a test uses it.

    @pytest.mark.lb(algo="round_robin")                  # the shipped config on nginx
    def test_my_config(lb_result): ...

    @pytest.mark.lb(balancer="haproxy", config="haproxy.cfg", algo="least_conn")
    def test_haproxy_least_conn(): ...

A marker with arguments runs ``harness bench`` in a child process before the test body
(the test's own process is never patched for gevent), and a failing verdict fails the test
with its numbers; ``lb_result`` gives the verdicts to the body. A bare ``@pytest.mark.lb``
only marks a test as live, for ``pytest -m lb``. The ``lb_bench`` fixture runs benches in
the test's process and returns the library's own result: Locust patches the standard
library for gevent when it is first used.

Settings resolve command line > environment > ini > default::

    --lb-duration / HARNESS_LB_DURATION / lb_duration   seconds of load per algorithm
    --lb-users    / HARNESS_LB_USERS    / lb_users      concurrent Locust users
    --lb-results-dir / HARNESS_LB_RESULTS_DIR / lb_results_dir
    --lb-false-alarm-rate / HARNESS_LB_FALSE_ALARM_RATE / lb_false_alarm_rate
                                                        each statistical check's false-alarm rate
    --lb-missing  / HARNESS_LB_MISSING  / lb_missing    error (default) or skip when the
                                                        balancer is not installed
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.bench import BenchResult
    from harness.checks.verdict import Verdict

# The library's default (harness.checks.distribution.FALSE_ALARM_RATE), spelled here so that
# loading the plugin does not import scipy; a unit test keeps the two equal.
DEFAULT_FALSE_ALARM_RATE = "0.001"

_SETTINGS = {
    # name: (environment variable, default, help)
    "lb_duration": ("HARNESS_LB_DURATION", "3", "seconds of load per algorithm in live tests"),
    "lb_users": ("HARNESS_LB_USERS", "10", "concurrent Locust users in live tests"),
    "lb_results_dir": ("HARNESS_LB_RESULTS_DIR", "", "where live tests keep run directories (default: tmp)"),
    # A suite of k statistical checks at rate a each fails a correct config up to k*a of its runs:
    # divide the rate the whole suite may have by the number of checks it makes.
    "lb_false_alarm_rate": (
        "HARNESS_LB_FALSE_ALARM_RATE",
        DEFAULT_FALSE_ALARM_RATE,
        "each statistical check's chance of failing a correct config in live tests",
    ),
    "lb_missing": (
        "HARNESS_LB_MISSING",
        "error",
        "error (default) or skip: what a live test does on a machine without its balancer",
    ),
}
MISSING_CHOICES = ("error", "skip")
# A marked test's bench: far above any run's length, so that only a hung child reaches it.
CHILD_TIMEOUT = 1800

# The marker's arguments and the `harness bench` options they become.
MARKER_OPTIONS = {
    "balancer": "--balancer",
    "algo": "--algo",
    "config": "--config",
    "scenario": "--scenario",
    "backends": "--backends",
    "duration": "--duration",
    "users": "--users",
    "workers": "--workers",
    "zone": "--zone",
    "weights": "--weights",
    "runtime": "--runtime",
    "rate": "--rate",
    "driver": "--driver",
    "infra_dir": "--infra-dir",
    "upstream": "--upstream",
    "route": "--route",
    "claims_from": "--claims-from",
}
MARKER_SIGNATURE = (
    'lb(balancer="nginx", algo=None, config=None, scenario=None, backends=None, duration=None, users=None, '
    "workers=None, zone=False, weights=None, runtime=None, rate=None, driver=None, infra_dir=None, upstream=None, "
    "route=None, claims_from=None): "
    "with arguments, run `harness bench` with them before the test and fail it on a failing verdict; "
    "bare, mark a live load-balancer test for `pytest -m lb`"
)
# Where a balancer's absence is told and what installs it (Debian's packages).
_BALANCER_TOOLS = {
    "nginx": (("nginx", "/usr/sbin/nginx"), "nginx-light"),
    "haproxy": (("haproxy", "/usr/sbin/haproxy"), "haproxy"),
    "caddy": (("caddy", "/usr/bin/caddy"), "caddy"),
    "kube-proxy": (("nft", "/usr/sbin/nft"), "nftables"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lb-harness", "load-balancer tests against real balancers and backends")
    for name, (_, default, help_text) in _SETTINGS.items():
        group.addoption(f"--{name.replace('_', '-')}", dest=name, default=None, help=help_text)
        parser.addini(name, help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_SIGNATURE)
    missing = _setting(config, "lb_missing")
    if missing not in MISSING_CHOICES:
        raise pytest.UsageError(f"invalid lb_missing {missing!r} from {_where('lb_missing')}: expected error or skip")


def _setting(config: pytest.Config, name: str) -> str:
    from_cli = config.getoption(name)
    if from_cli is not None:
        return str(from_cli)
    environment_variable = _SETTINGS[name][0]
    if environment_variable in os.environ:
        return os.environ[environment_variable]
    return str(config.getini(name))


def _where(name: str) -> str:
    return f"--{name.replace('_', '-')}, ${_SETTINGS[name][0]} or the ini option {name}"


@dataclass(frozen=True)
class LiveSettings:
    duration: float
    users: int
    results_dir: Path
    false_alarm_rate: float
    missing: str = "error"


def _live_settings(config: pytest.Config, tmp_path: Path) -> LiveSettings:
    results = _setting(config, "lb_results_dir")
    return LiveSettings(
        duration=_number(config, "lb_duration", float),
        users=int(_number(config, "lb_users", int)),
        results_dir=Path(results) if results else tmp_path / "results",
        false_alarm_rate=_number(config, "lb_false_alarm_rate", float),
        missing=_setting(config, "lb_missing"),
    )


@pytest.fixture
def lb_settings(request: pytest.FixtureRequest, tmp_path: Path) -> LiveSettings:
    return _live_settings(request.config, tmp_path)


def _number(config: pytest.Config, name: str, kind: type[float] | type[int]) -> float:
    value = _setting(config, name)
    try:
        return kind(value)
    except ValueError:
        raise pytest.UsageError(f"invalid {name} {value!r} from {_where(name)}: expected a number") from None


def missing_balancer(balancer: str) -> str | None:
    """Why ``balancer`` cannot run on this machine, with the install line; None when it can."""
    tools = _BALANCER_TOOLS.get(balancer)
    if tools is None:
        return None  # client-side balancing has no binary; an unknown name is the bench's to refuse
    (command, usual_path), package = tools
    import shutil

    sudo = "" if os.geteuid() == 0 else "sudo "
    install = f"{sudo}apt-get install -y {package}"
    variable = f"HARNESS_{command.upper()}"  # the balancers' own override of where the binary is
    chosen = os.environ.get(variable) if command in {"nginx", "haproxy", "caddy"} else None
    if chosen:
        if Path(chosen).is_file() and os.access(chosen, os.X_OK):
            return None
        return f"{balancer} is not installed: {variable}={chosen} is not an executable; {install}"
    if shutil.which(command) or Path(usual_path).exists():
        return None
    return f"{balancer} is not installed ({command} not found): {install}"


def _skip_or_fail(reason: str, settings: LiveSettings) -> None:
    if settings.missing == "skip":
        pytest.skip(reason)
    pytest.fail(f"{reason} (or run with --lb-missing=skip)", pytrace=False)


@pytest.fixture
def lb_bench(lb_settings: LiveSettings) -> Callable[..., BenchResult]:
    """Runs ``harness bench`` in-process: ``lb_bench("round_robin", workers=2, zone=True)``."""
    import locust  # noqa: F401  (first: Locust patches the standard library for gevent)

    from harness.bench import bench
    from harness.errors import ToolMissingError
    from harness.spec import BenchSpec

    def run(*algorithms: str, **options: Any) -> BenchResult:
        if options.get("duration") is None:
            options["duration"] = lb_settings.duration
        options.setdefault("users", lb_settings.users)
        options.setdefault("results_dir", lb_settings.results_dir)
        options.setdefault("false_alarm_rate", lb_settings.false_alarm_rate)
        if options.get("config") is not None:
            options["config"] = Path(options["config"])
        reason = missing_balancer(options.get("balancer", "nginx"))
        if reason is not None:
            _skip_or_fail(reason, lb_settings)
        try:
            return bench(BenchSpec(algorithms=tuple(algorithms), **options))
        except ToolMissingError as missing:
            _skip_or_fail(str(missing), lb_settings)
            raise  # not reached: skip and fail raise

    return run


@dataclass(frozen=True)
class LiveResult:
    """What a marked test's bench found: every verdict of every algorithm it ran."""

    run_dir: Path
    passed: bool
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def failed(self) -> list[str]:
        return [f"{algorithm}: {v}" for algorithm, verdicts in self.verdicts.items() for v in verdicts if v.failed]

    def report(self) -> str:
        return "\n".join(f"{algorithm}: {v}" for algorithm, verdicts in self.verdicts.items() for v in verdicts)


_RESULT_KEY = pytest.StashKey[LiveResult]()


def _bench_arguments(item: pytest.Item, options: dict[str, Any], settings: LiveSettings, results: Path) -> list[str]:
    unknown = sorted(set(options) - set(MARKER_OPTIONS))
    if unknown:
        pytest.fail(
            f"{item.nodeid}: unknown lb marker argument {', '.join(unknown)}; known: {', '.join(MARKER_OPTIONS)}",
            pytrace=False,
        )
    # None is "the default", as in the signature: the plugin's settings, not the command's.
    given = {name: value for name, value in options.items() if value is not None}
    options = {"duration": settings.duration, "users": settings.users, **given}
    arguments = ["bench", "--results-dir", str(results), "--false-alarm-rate", str(settings.false_alarm_rate)]
    for name, value in options.items():
        if value is None or value is False:
            continue
        if name in {"config", "scenario", "infra_dir", "claims_from"}:
            value = _near_test(item, str(value))  # a scenario's name stays a name: no such file is beside
        if value is True:
            arguments.append(MARKER_OPTIONS[name])
        elif name == "weights" and not isinstance(value, str):
            arguments += [MARKER_OPTIONS[name], ",".join(str(weight) for weight in value)]
        else:
            arguments += [MARKER_OPTIONS[name], str(value)]
    return arguments


def _near_test(item: pytest.Item, path: str) -> str:
    """A relative path from the marker: next to the test file when it is there, else as given."""
    beside = Path(str(item.path)).parent / path
    return str(beside) if not Path(path).is_absolute() and beside.exists() else path


def _read_result(results: Path) -> LiveResult:
    from harness.checks.verdict import Verdict

    (run_dir,) = [path.parent for path in results.glob("*/summary.json")]
    top = json.loads((run_dir / "summary.json").read_text())
    verdicts: dict[str, list[Verdict]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for algorithm, entry in top.get("algorithms", {}).items():
        summary = json.loads(Path(entry["summary"]).read_text())
        summaries[algorithm] = summary
        verdicts[algorithm] = [
            Verdict(
                check=v["check"],
                passed=v["passed"],
                summary=v["summary"],
                observed=v.get("observed", {}),
                expected=v.get("expected", {}),
                false_alarm_rate=v.get("false_alarm_rate"),
            )
            for v in summary.get("verdicts", [])
        ]
    return LiveResult(run_dir=run_dir, passed=bool(top.get("passed")), verdicts=verdicts, summaries=summaries)


def _live_marker(item: pytest.Item) -> pytest.Mark | None:
    marker = item.get_closest_marker("lb")
    return marker if marker is not None and (marker.kwargs or marker.args) else None


# Not tryfirst: pytest's skip marks are, and run first; a plugin's plain hook still runs before
# pytest's own, which sets up the fixtures, so lb_result finds the bench.
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = _live_marker(item)
    if marker is None:
        return
    if marker.args:
        pytest.fail(f"{item.nodeid}: the lb marker takes keyword arguments only: {MARKER_SIGNATURE}", pytrace=False)
    settings = _live_settings(item.config, _results_root(item))
    reason = missing_balancer(str(marker.kwargs.get("balancer", "nginx")))
    if reason is not None:
        _skip_or_fail(reason, settings)
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    # A folder of this run's own: a kept --lb-results-dir holds earlier sessions' runs too.
    results = Path(tempfile.mkdtemp(prefix=f"{_safe_name(item.nodeid)}-", dir=settings.results_dir))
    arguments = _bench_arguments(item, dict(marker.kwargs), settings, results)
    command = [sys.executable, "-m", "harness.cli.main", *arguments]
    # The child is the CLI users run; its exit code 1 is a failing verdict, read from the run directory.
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"harness {' '.join(arguments)} did not finish in {CHILD_TIMEOUT} s", pytrace=False)
    item.add_report_section("setup", "harness bench", done.stdout + done.stderr)
    if done.returncode not in (0, 1) or not list(results.glob("*/summary.json")):
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [f"exit code {done.returncode}"]
        pytest.fail(f"harness {' '.join(arguments)} did not run: {last[0]}", pytrace=False)
    result = _read_result(results)
    item.stash[_RESULT_KEY] = result
    for algorithm, verdicts in result.verdicts.items():
        for verdict in verdicts:
            item.user_properties.append((f"lb.{algorithm}.{_property_name(verdict.check)}", str(verdict)))
    item.user_properties.append(("lb.run_dir", str(result.run_dir)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = item.stash.get(_RESULT_KEY, None)
    if result is not None and result.failed():
        pytest.fail(
            "the balancer did not do what the config claims:\n"
            + "\n".join(f"  {line}" for line in result.failed())
            + f"\nevery verdict:\n{result.report()}\nrun: {result.run_dir}",
            pytrace=False,
        )
    return (yield)


@pytest.fixture
def lb_result(request: pytest.FixtureRequest) -> LiveResult:
    """The bench of the test's ``@pytest.mark.lb(...)``: its run directory and every verdict."""
    result: LiveResult | None = request.node.stash.get(_RESULT_KEY, None)
    if result is None:
        pytest.fail(f"{request.node.nodeid}: lb_result needs @pytest.mark.lb(...) with arguments", pytrace=False)
    return result


def _results_root(item: pytest.Item) -> Path:
    factory = item.config._tmp_path_factory  # type: ignore[attr-defined]
    return Path(factory.getbasetemp()) / "lb"


def _safe_name(nodeid: str) -> str:
    return "".join(character if character.isalnum() or character in "-_." else "_" for character in nodeid)[-120:]


def _property_name(check: str) -> str:
    return "_".join(check.split())


def verdict_report(result: BenchResult) -> str:
    """Every verdict of a bench result with its numbers, for assertion messages."""
    return "\n".join(
        f"{algorithm.algorithm}: {verdict}" for algorithm in result.results for verdict in algorithm.verdicts
    )
