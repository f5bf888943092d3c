"""Load hosts on one machine: their blocks of client addresses, what a lost one says, the
worker's options; the namespaces themselves are tested live (tests/live/test_load_hosts_live.py)."""

import argparse
import ipaddress

import pytest

from harness.load.distributed import LostWorker
from harness.load.hosts import FRONT, MAX_LOAD_HOSTS, LoadHost, SimulatedHosts
from harness.load.worker_options import master_address
from harness.net import relocated


def test_each_host_has_a_block_of_its_own_clear_of_the_front_and_the_pairs() -> None:
    hosts = [LoadHost(index, f"ns{index}") for index in range(1, MAX_LOAD_HOSTS + 1)]
    blocks = [host.client_block for host in hosts]
    reserved = ipaddress.IPv4Network("10.224.0.0/11")
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    assert all(not block.overlaps(reserved) for block in blocks)
    assert ipaddress.IPv4Address(FRONT) in reserved
    assert all(ipaddress.IPv4Address(host.address) in reserved for host in hosts)
    assert [host.name for host in hosts[:2]] == ["load-host-1", "load-host-2"]


def test_a_client_keeps_its_offset_in_the_hosts_block() -> None:
    block = ipaddress.IPv4Network("10.32.0.0/11")
    # Client i keeps its /24 and its host number: a population over K networks stays K networks.
    assert relocated("127.10.0.1", block) == "10.32.0.1"
    assert relocated("127.10.3.7", block) == "10.32.3.7"
    with pytest.raises(ValueError, match=r"has no place in 10\.32\.0\.0/11"):
        relocated("127.9.255.255", block)


def test_hosts_are_counted_and_a_wrong_count_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 7 load hosts, got 0"):
        SimulatedHosts(0, "run")
    hosts = SimulatedHosts(2, "run")
    line = hosts.describe(["10.0.0.1", "10.0.0.1", "10.32.4.1", "127.0.0.1"])
    assert "load from 2 hosts" in line and FRONT in line
    assert "load-host-1 (10.255.1.2, clients from 10.0.0.0/11) 2" in line
    assert "load-host-2 (10.255.2.2, clients from 10.32.0.0/11) 1" in line


def test_a_lost_worker_says_what_was_kept_and_when_it_last_reported() -> None:
    assert "Locust worker worker-2 was lost" in LostWorker("worker-2", 1, 2.0, on_host=False).describe()
    assert LostWorker("load-host-2", 4321, 6.04).describe() == (
        "load host load-host-2 was lost, its last report 6.0 s into the load: its 4,321 records reported are "
        "kept, the requests it sent after that are not in the run"
    )
    assert "before its first report: its 0 records" in LostWorker("load-host-1", 0, None).describe()


@pytest.mark.parametrize("text", ["10.0.0.1", "10.0.0.1:", ":5557", "host:99999", "host:port"])
def test_a_master_address_needs_a_host_and_a_port(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--master takes HOST:PORT"):
        master_address(text)


def test_a_master_address_is_split_at_the_last_colon() -> None:
    assert master_address("10.254.0.1:5557") == ("10.254.0.1", 5557)
