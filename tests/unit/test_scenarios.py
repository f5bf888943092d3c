"""Scenario files: the shipped ones load, and mistakes are named with file and field."""

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.faults.kinds import FAULT_KINDS, KillFault, SlowFault
from harness.scenarios.model import load_scenario, shipped_scenarios


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "name", ["failover", "hang", "slow-least-conn", "rolling-restart", "fail", "unhealthy", "blackhole", "scale"]
)
def test_shipped_scenarios_load(name: str) -> None:
    assert name in shipped_scenarios()
    scenario = load_scenario(name)
    assert scenario.steps and all(step.kind in FAULT_KINDS for step in scenario.steps)


def test_failover_kills_the_second_instance_and_brings_it_back() -> None:
    (step,) = load_scenario("failover").steps
    assert isinstance(step.fault, KillFault) and step.instance == 2
    assert (step.at, step.rollback_at) == (3.0, 7.0)


def test_parameters_reach_the_fault(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, 'duration = 5\n[[faults]]\nat = 1\nkind = "slow"\ndelay_ms = 80\n'))
    fault = scenario.steps[0].fault
    assert isinstance(fault, SlowFault) and fault.mode == {"delay_ms": 80.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('duration = 5\n[[faults]]\nat = 1\nkind = "explode"\n', "unknown fault 'explode'"),
        ('duration = 5\n[[faults]]\nat = 9\nkind = "kill"\n', "at must be a time inside the run"),
        ('duration = 5\n[[faults]]\nat = 1\nkind = "kill"\nrollback_after = 10\n', "outside the 5 s run"),
        ('duration = 5\n[[faults]]\nat = 1\nkind = "kill"\ndelay_ms = 3\n', "takes no parameter delay_ms"),
        ('duration = 5\n[[faults]]\nat = 1\nkind = "fail"\nfail_rate = 2\n', "fail_rate must be above 0"),
        ("[[faults]]\nat = 1\n", "duration must be"),
        ('duration = 5\nalgorithm = "fastest"\n', "unknown algorithm 'fastest'"),
        ("duration = [", "not valid TOML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_scenario(write(tmp_path, text))


def test_an_unknown_scenario_lists_the_shipped_ones() -> None:
    with pytest.raises(SpecError, match=r"shipped scenarios: .*failover"):
        load_scenario("nope")


def test_slow_takes_a_delay_distribution(tmp_path: Path) -> None:
    text = 'duration = 5\n[[faults]]\nat = 1\nkind = "slow"\ndelay = "100ms:50,1s:5"\n'
    fault = load_scenario(write(tmp_path, text)).steps[0].fault
    assert isinstance(fault, SlowFault) and fault.mode == {"delay_ms": 0.0, "delay": "100ms:50,1s:5"}


def test_a_bad_delay_distribution_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="bad delay for fault 'slow'"):
        load_scenario(write(tmp_path, 'duration = 5\n[[faults]]\nat = 1\nkind = "slow"\ndelay = "soon"\n'))


def test_a_scenario_sets_its_workload(tmp_path: Path) -> None:
    from harness.load.workload import Workload

    path = tmp_path / "s.toml"
    path.write_text('duration = 5\n[workload]\nkind = "sse"\nhold = 1.5\nevery = 0.25\n')
    assert load_scenario(str(path)).workload == Workload("sse", hold=1.5, every=0.25)
    path.write_text('duration = 5\n[workload]\nkind = "websocket"\nlength = 3\n')
    with pytest.raises(SpecError, match=r"\[workload\] has no length; it takes kind, hold"):
        load_scenario(str(path))
    path.write_text('duration = 5\n[workload]\nkind = "websocket"\nhold = "long"\n')
    with pytest.raises(SpecError, match=r"s.toml: \[workload\]"):
        load_scenario(str(path))
