"""Each fault kind is declared once (its parameters and check families) and built from that."""

import pytest

from harness.errors import SpecError
from harness.faults.kinds import make_fault
from harness.results.faults import CLUSTER_CHANGE, FAILS_HEALTH, FAILS_TRAFFIC, FAULTS, GONE, fault_kind
from harness.scenarios import model

NEEDED = {"scale": {"to": 2}}  # parameters without a default


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_declared_kind_is_built_under_its_own_name(name: str) -> None:
    fault = make_fault(name, NEEDED.get(name, {}), "test.toml [[steps]] 1")
    assert fault.kind == name
    assert fault_kind(name).acts_on_instance == (CLUSTER_CHANGE not in fault_kind(name).families)


def test_a_parameter_the_kind_does_not_declare_is_refused_with_where() -> None:
    with pytest.raises(SpecError, match=r"s.toml \[\[steps\]\] 2: fault 'kill' takes no parameter delay_ms"):
        make_fault("kill", {"delay_ms": 5}, "s.toml [[steps]] 2")


def test_the_families_say_what_the_checks_read() -> None:
    assert {k for k, v in FAULTS.items() if v.has(GONE)} == {"kill", "stop", "restart"}
    assert {k for k, v in FAULTS.items() if v.has(FAILS_TRAFFIC)} == {"kill", "stop", "hang", "blackhole"}
    assert {k for k, v in FAULTS.items() if v.has(FAILS_HEALTH)} == {"kill", "stop", "hang", "blackhole", "unhealthy"}


def test_the_scenario_format_lists_every_kind() -> None:
    listed = next(line for line in (model.__doc__ or "").splitlines() if line.startswith("kind = "))
    assert set(listed.split("#", 1)[1].split()) == set(FAULTS)
