"""Spec validation and instance planning: messages a user reads."""

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec import BenchSpec
from harness.topology import plan_instances


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithms": ("fastest",)}, "unknown algorithm 'fastest'"),
        ({"algorithms": ("round_robin",), "backends": 0}, "--backends must be between 1 and 1000, got 0"),
        ({"algorithms": ("round_robin",), "backends": 1001}, "--backends must be between 1 and 1000"),
        ({"algorithms": ("round_robin",), "users": 0}, "--users must be between 1"),
        ({"algorithms": ("round_robin",), "duration": 0}, "--duration must be above 0"),
        ({"algorithms": ("random",), "false_alarm_rate": 0.0}, "--false-alarm-rate must be above 0 and below 1"),
        ({"algorithms": ("random",), "false_alarm_rate": float("nan")}, "--false-alarm-rate must be above 0"),
        ({"algorithms": ("round_robin",), "weights": (3, 0)}, "--weights must be positive"),
        ({"algorithms": ("round_robin",), "config": Path("/nonexistent.conf")}, "config file not found"),
        ({"algorithms": ("round_robin", "ip_hash"), "config": Path("/etc/hostname")}, "--config runs one config"),
        ({"algorithms": ("round_robin",), "results_dir": Path("/etc/hostname/results")}, "is not writable"),
        ({"algorithms": ("round_robin",), "results_dir": Path("/tmp/a$host")}, "holds a [$], which nginx reads"),
        ({"algorithms": ("round_robin",), "load_hosts": 8}, "--load-hosts must be between 1 and 7, got 8"),
        ({"algorithms": ("round_robin",), "load_hosts": 2, "balancer": "kube-proxy"}, "not through kube-proxy"),
        ({"algorithms": ("round_robin",), "load_hosts": 2, "load_workers": 2}, "drop --load-workers"),
        ({"algorithms": ("round_robin",), "load_hosts": 2, "runtime": "docker"}, "not --runtime docker"),
    ],
)
def test_invalid_specs_say_what_is_wrong(options: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        BenchSpec(**options).validate()  # type: ignore[arg-type]


def test_one_service_gets_every_instance() -> None:
    plan = plan_instances(["api-gateway"], 3)
    assert [(s.name, s.host) for s in plan] == [
        ("api-gateway-1", "127.0.1.1"),
        ("api-gateway-2", "127.0.1.2"),
        ("api-gateway-3", "127.0.1.3"),
    ]


def test_default_is_three_instances_or_one_per_service() -> None:
    assert len(plan_instances(["api"], None)) == 3
    assert [s.name for s in plan_instances(["a", "b"], None)] == ["a", "b"]


def test_several_services_split_evenly() -> None:
    assert [s.name for s in plan_instances(["a", "b"], 4)] == ["a.1", "a.2", "b.1", "b.2"]


def test_an_uneven_split_is_refused_with_the_services_named() -> None:
    with pytest.raises(SpecError, match=r"3 backends cannot be split evenly over the config's 2 services \(a, b\)"):
        plan_instances(["a", "b"], 3)


def test_instances_fill_four_networks_of_250_hosts() -> None:
    from harness.runtimes.local import MAX_INSTANCES, instance_host

    hosts = [instance_host(index) for index in range(MAX_INSTANCES)]
    assert (hosts[0], hosts[249], hosts[250], hosts[-1]) == ("127.0.1.1", "127.0.1.250", "127.0.2.1", "127.0.4.250")
    assert len(set(hosts)) == MAX_INSTANCES == 1000
    with pytest.raises(ValueError, match=r"outside 0\.\.999"):
        instance_host(MAX_INSTANCES)
