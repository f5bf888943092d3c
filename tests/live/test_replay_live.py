"""The models held to the real balancers: populations, and the keys a change of peers moves."""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bench import BenchResult
from harness.checks.population import POPULATION_CHECK
from harness.checks.remap import REMAP_CHECK
from harness.checks.replay import REPLAY_CHECK
from harness.infra import infra_path
from harness.pytest_plugin import verdict_report

pytestmark = pytest.mark.lb

Bench = Callable[..., BenchResult]

HASHED = """events {{ worker_connections 1024; }}
http {{
    upstream app {{ hash $remote_addr{consistent}; server app:3000; }}
    server {{ listen 80; location / {{ proxy_pass http://app; }} }}
}}
"""


# The shipped scale scenario's two changes (grow, then shrink), in less time.
SCALE = """name = "scale-short"
description = "3 -> 5 -> 2 instances"
algorithm = "hash"
duration = 4
warmup = 1

[[faults]]
at = 1.5
kind = "scale"
to = 5

[[faults]]
at = 3
kind = "scale"
to = 2
"""


@pytest.mark.parametrize("consistent", ["", " consistent"])
def test_a_scale_scenario_moves_the_keys_the_model_predicts(lb_bench: Bench, tmp_path: Path, consistent: str) -> None:
    config = tmp_path / "hash.conf"
    config.write_text(HASHED.format(consistent=consistent))
    scenario = tmp_path / "scale.toml"
    scenario.write_text(SCALE)
    result = lb_bench("hash", config=config, scenario=str(scenario), users=24)
    run = result.results[0]
    replay = next(v for v in run.verdicts if v.check == REPLAY_CHECK)
    assert replay.passed and replay.observed["picks"] == replay.observed["as_predicted"], verdict_report(result)
    moves = [v for v in run.verdicts if v.check == REMAP_CHECK]
    assert len(moves) == 2 and all(v.passed for v in moves), verdict_report(result)  # 3 -> 5, then 5 -> 2
    for verdict in moves:
        print(verdict.summary)  # the remap fraction of each change, for the log
        assert 0 < verdict.observed["remap_fraction"] <= 1 and verdict.observed["keys"] == 24, verdict_report(result)


def test_clients_of_four_networks_land_where_ip_hash_puts_them(lb_bench: Bench) -> None:
    result = lb_bench("ip_hash", clients=100, client_networks=4, duration=1)
    population = next(v for v in result.results[0].verdicts if v.check == POPULATION_CHECK)
    assert population.passed, verdict_report(result)
    # Four /24s are four keys to ip_hash: the 25 clients of each network land together.
    counts = population.observed["per_instance"]
    assert sum(counts.values()) == 100 and all(count % 25 == 0 for count in counts.values()), counts


def test_haproxy_consistent_source_hashing_replays_exactly(lb_bench: Bench) -> None:
    config = infra_path("haproxy", "haproxy-consistent-hash.cfg")
    result = lb_bench("ip_hash", balancer="haproxy", config=config, clients=60, duration=1)
    verdicts = {v.check: v for v in result.results[0].verdicts}
    assert verdicts[POPULATION_CHECK].passed, verdict_report(result)
    replay = verdicts[REPLAY_CHECK]
    assert replay.passed and replay.observed["picks"] == replay.observed["as_predicted"] > 0, verdict_report(result)
