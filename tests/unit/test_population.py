"""Client populations (--clients, --client-networks) and the verdict on where they land."""

import pytest

from harness.checks.population import population_as_predicted
from harness.errors import SpecError
from harness.models.nginx_hash import ip_hash
from harness.models.peers import ModelPeer
from harness.net import ClientPopulation, client_address
from harness.spec import BenchSpec


def test_clients_take_the_networks_in_turn() -> None:
    population = ClientPopulation(6, 2)
    assert population.addresses() == [
        "127.10.0.1", "127.10.1.1", "127.10.0.2", "127.10.1.2", "127.10.0.3", "127.10.1.3",
    ]  # fmt: skip
    assert population.describe() == "6 clients from 2 /24 networks"


def test_a_client_each_network_is_the_users_own_addresses() -> None:
    population = ClientPopulation(300, 300)
    assert [population.address(i) for i in (0, 1, 255, 256, 299)] == [client_address(i) for i in (0, 1, 255, 256, 299)]


def test_one_network_is_one_client_to_ip_hash() -> None:
    peers = [ModelPeer("a"), ModelPeer("b"), ModelPeer("c")]
    landing = {str(ip_hash(address, peers)) for address in ClientPopulation(200, 1).addresses()}
    assert len(landing) == 1


@pytest.mark.parametrize(
    ("clients", "networks", "message"),
    [
        (None, 4, "give --clients too"),
        (0, None, "--clients must be between 1"),
        (10, 11, "--client-networks must be between 1 and --clients"),
        (600, 2, "give --client-networks 3 or more"),
    ],
)
def test_populations_that_cannot_be_are_refused(clients: int | None, networks: int | None, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        BenchSpec(algorithms=("ip_hash",), clients=clients, client_networks=networks).validate()


def test_the_verdict_names_the_first_client_elsewhere_with_the_numbers() -> None:
    predicted = {"127.10.0.1": "i1", "127.10.1.1": "i2", "127.10.2.1": "i2"}
    same = population_as_predicted("nginx's ip_hash", "3 clients", predicted, dict(predicted), ["i1", "i2", "i3"])
    assert same.passed
    assert "predicted clients per instance i1 1, i2 2, i3 0; the busiest instance gets 2.00x" in same.summary
    moved = population_as_predicted(
        "nginx's ip_hash", "3 clients", predicted, {**predicted, "127.10.2.1": "i3"}, ["i1", "i2", "i3"]
    )
    assert moved.passed is False
    assert "1 of 3 clients elsewhere, e.g. 127.10.2.1 on i3 (predicted i2)" in moved.summary
