"""pytest plugin: the ``lb`` marker and the ``lb_bench`` fixture for live balancer tests.

Settings resolve command line > environment > ini > default::

    --lb-duration / HARNESS_LB_DURATION / lb_duration   seconds of load per algorithm
    --lb-users    / HARNESS_LB_USERS    / lb_users      concurrent Locust users
    --lb-results-dir / HARNESS_LB_RESULTS_DIR / lb_results_dir
    --lb-false-alarm-rate / HARNESS_LB_FALSE_ALARM_RATE / lb_false_alarm_rate
                                                        each statistical check's false-alarm rate

A test marked ``@pytest.mark.lb`` runs against real nginx and real backends; ``pytest -m lb``
runs exactly those.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import locust  # noqa: F401  (first: Locust patches the standard library for gevent)
import pytest

from harness.bench import BenchResult, bench
from harness.checks.distribution import FALSE_ALARM_RATE
from harness.spec import BenchSpec

_SETTINGS = {
    # name: (environment variable, default, help)
    "lb_duration": ("HARNESS_LB_DURATION", "3", "seconds of load per algorithm in live tests"),
    "lb_users": ("HARNESS_LB_USERS", "10", "concurrent Locust users in live tests"),
    "lb_results_dir": ("HARNESS_LB_RESULTS_DIR", "", "where live tests keep run directories (default: tmp)"),
    # A suite of k statistical checks at rate a each fails a correct config up to k*a of its runs:
    # divide the rate the whole suite may have by the number of checks it makes.
    "lb_false_alarm_rate": (
        "HARNESS_LB_FALSE_ALARM_RATE",
        str(FALSE_ALARM_RATE),
        "each statistical check's chance of failing a correct config in live tests",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lb-harness", "load-balancer tests against real nginx")
    for name, (_, default, help_text) in _SETTINGS.items():
        group.addoption(f"--{name.replace('_', '-')}", dest=name, default=None, help=help_text)
        parser.addini(name, help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lb: a live load-balancer test against real nginx and real backend processes",
    )


def _setting(config: pytest.Config, name: str) -> str:
    from_cli = config.getoption(name)
    if from_cli is not None:
        return str(from_cli)
    environment_variable = _SETTINGS[name][0]
    if environment_variable in os.environ:
        return os.environ[environment_variable]
    return str(config.getini(name))


@dataclass(frozen=True)
class LiveSettings:
    duration: float
    users: int
    results_dir: Path
    false_alarm_rate: float


@pytest.fixture
def lb_settings(request: pytest.FixtureRequest, tmp_path: Path) -> LiveSettings:
    results = _setting(request.config, "lb_results_dir")
    return LiveSettings(
        duration=_number(request.config, "lb_duration", float),
        users=int(_number(request.config, "lb_users", int)),
        results_dir=Path(results) if results else tmp_path / "results",
        false_alarm_rate=_number(request.config, "lb_false_alarm_rate", float),
    )


def _number(config: pytest.Config, name: str, kind: type[float] | type[int]) -> float:
    value = _setting(config, name)
    try:
        return kind(value)
    except ValueError:
        where = f"--{name.replace('_', '-')}, ${_SETTINGS[name][0]} or the ini option {name}"
        raise pytest.UsageError(f"invalid {name} {value!r} from {where}: expected a number") from None


@pytest.fixture
def lb_bench(lb_settings: LiveSettings) -> Callable[..., BenchResult]:
    """Runs ``harness bench`` in-process: ``lb_bench("round_robin", workers=2, zone=True)``."""

    def run(*algorithms: str, **options: Any) -> BenchResult:
        if options.get("duration") is None:
            options["duration"] = lb_settings.duration
        options.setdefault("users", lb_settings.users)
        options.setdefault("results_dir", lb_settings.results_dir)
        options.setdefault("false_alarm_rate", lb_settings.false_alarm_rate)
        if options.get("config") is not None:
            options["config"] = Path(options["config"])
        return bench(BenchSpec(algorithms=tuple(algorithms), **options))

    return run


def verdict_report(result: BenchResult) -> str:
    """Every verdict of a bench result with its numbers, for assertion messages."""
    return "\n".join(
        f"{algorithm.algorithm}: {verdict}" for algorithm in result.results for verdict in algorithm.verdicts
    )
