"""prepare(spec) refuses what cannot work before any directory exists, saying where the value came from."""

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.plan import prepare
from harness.spec import BenchSpec


def _spec(tmp_path: Path, **options: object) -> BenchSpec:
    options.setdefault("algorithms", ("round_robin",))
    return BenchSpec(results_dir=tmp_path / "results", **options)  # type: ignore[arg-type]


def test_a_scenario_step_on_an_instance_the_run_will_not_have_is_named_before_anything_exists(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration = 5\n[[faults]]\nat = 1\nkind = "kill"\ninstance = 5\n')
    with pytest.raises(SpecError, match=r"s\.toml: fault at 1 s names instance 5, but the run has 3 instances"):
        prepare(_spec(tmp_path, algorithms=("health_checks",), scenario=str(scenario), backends=3))

    assert not (tmp_path / "results").exists()


def test_weights_that_do_not_match_the_instances_are_refused_with_both_counts(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"--weights gives 3 weights for 2 instances"):
        prepare(_spec(tmp_path, algorithms=("weighted",), weights=(1, 2, 3)))
    assert not (tmp_path / "results").exists()


def test_a_command_of_one_cluster_takes_one_algorithm_and_one_upstream(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="one algorithm at a time here"):
        prepare(_spec(tmp_path, algorithms=("round_robin", "least_conn")), command="up")
    config = Path(__file__).parents[1] / "configs" / "two-upstreams" / "nginx.conf"
    with pytest.raises(SpecError, match="--upstream all judges each upstream in turn"):
        prepare(_spec(tmp_path, algorithms=(), config=config, upstream="all"), command="ui")


def test_the_plan_names_each_run_and_its_folder(tmp_path: Path) -> None:
    plan = prepare(_spec(tmp_path, algorithms=("round_robin", "ip_hash"), balancer="haproxy"))
    assert [(run.algorithm.name, run.folder, run.config.balancer) for run in plan.runs] == [
        ("round_robin", "round_robin", "haproxy"),
        ("ip_hash", "ip_hash", "haproxy"),
    ]
    assert plan.label == "haproxy-all"
    config = Path(__file__).parents[1] / "configs" / "two-upstreams" / "nginx.conf"
    every = prepare(_spec(tmp_path, algorithms=(), config=config, upstream="all"))
    assert [run.folder for run in every.runs] == ["api-weighted", "web-least_conn"]
