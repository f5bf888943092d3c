"""Client-side balancing without processes: the policies, nginx's failure rule, the config, retries."""

from pathlib import Path

import pytest

from harness.balancers.client.balancer import ClientSideBalancer, NoLiveInstanceError
from harness.balancers.client.config import load_config
from harness.balancers.client.health import PassiveHealth
from harness.balancers.client.policies import ClientHash, LeastOutstanding, RandomPick, SmoothWeightedRoundRobin, Target
from harness.balancers.nginx.access_log import attempts, read_access_log
from harness.checks.schedule import smooth_weighted_round_robin
from harness.errors import ConfigError
from harness.load.route import Answer, Attempt
from harness.runtimes.base import Instance

THREE = [Target("a", 1), Target("b", 1), Target("c", 1)]


def everyone(name: str) -> bool:
    return True


def picks(
    policy: SmoothWeightedRoundRobin | ClientHash, targets: list[Target], count: int, client: str = ""
) -> list[str]:
    chosen = [policy.pick(targets, everyone, client) for _ in range(count)]
    return [target.name for target in chosen if target is not None]


def test_round_robin_follows_nginx_smooth_weighted_order() -> None:
    weighted = [Target("a", 5), Target("b", 1), Target("c", 1)]
    expected = smooth_weighted_round_robin([(t.name, t.weight) for t in weighted])
    assert picks(SmoothWeightedRoundRobin(), weighted, len(expected) * 2) == expected * 2


def test_round_robin_skips_unusable_targets() -> None:
    policy = SmoothWeightedRoundRobin()
    chosen = [policy.pick(THREE, lambda name: name != "b", "") for _ in range(4)]
    assert [t.name for t in chosen if t] == ["a", "c", "a", "c"]
    assert policy.pick(THREE, lambda name: False, "") is None


def test_least_outstanding_avoids_the_busy_target_and_rotates_the_rest() -> None:
    outstanding = {"a": 1, "b": 0, "c": 0}
    policy = LeastOutstanding(outstanding)
    chosen = [policy.pick(THREE, everyone, "") for _ in range(4)]
    assert [t.name for t in chosen if t] == ["b", "c", "b", "c"]


def test_hash_keeps_a_client_and_moves_only_the_clients_of_a_dropped_target() -> None:
    policy = ClientHash()
    clients = [f"127.10.{i}.1" for i in range(40)]
    before = {c: policy.pick(THREE, everyone, c) for c in clients}
    again = {c: policy.pick(THREE, everyone, c) for c in clients}
    assert before == again
    assert {t.name for t in before.values() if t} == {"a", "b", "c"}
    after = {c: policy.pick(THREE, lambda name: name != "b", c) for c in clients}
    moved = {c for c in clients if after[c] != before[c]}
    assert moved == {c for c in clients if before[c] == Target("b", 1)}


def test_random_picks_only_usable_targets() -> None:
    policy = RandomPick()
    chosen = {policy.pick(THREE, lambda name: name != "a", "") for _ in range(200)}
    assert chosen == {Target("b", 1), Target("c", 1)}


def test_passive_health_follows_nginx_max_fails_and_fail_timeout() -> None:
    health = PassiveHealth(max_fails=2, fail_timeout=10.0)
    health.failed("a", 100.0)
    assert health.usable("a", 100.1)  # one failure of two
    health.failed("a", 101.0)
    assert not health.usable("a", 105.0) and health.out(105.0) == ["a"]
    assert health.usable("a", 111.5)  # fail_timeout after the last failure: one request may try
    health.picked("a", 111.5)
    health.succeeded("a")
    health.failed("a", 112.0)
    assert health.usable("a", 112.1)  # the success cleared the count: one failure of two again


def test_passive_health_max_fails_zero_never_drops() -> None:
    health = PassiveHealth(max_fails=0, fail_timeout=10.0)
    for moment in range(5):
        health.failed("a", float(moment))
    assert health.usable("a", 5.0)


def write(tmp_path: Path, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "client.toml"
    path.write_text(text)
    return path


SERVERS = '[[servers]]\nservice = "api-gateway"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('policy = "fastest"\n' + SERVERS, "unknown policy 'fastest'"),
        ('policy = "random"\n', "no [[servers]] entry"),
        ("[passive_checks]\nretry_on = ['http_418']\n" + SERVERS, "retry_on must list conditions"),
        ("[passive_checks]\nmax_fails = -1\n" + SERVERS, "max_fails must be a whole number"),
        ('[passive_checks]\nfail_timeout = "soon"\n' + SERVERS, "fail_timeout must be a time"),
        ('[[servers]]\nservice = "api gateway; rm -rf"\n', "service must be a lower-case name"),
        ('[[servers]]\nservice = "-"\n', "service must be a lower-case name"),
        ('[[servers]]\nservice = ".."\n', "service must be a lower-case name"),
        ('[[servers]]\nservice = "api-gateway"\nweight = 0\n', "weight of api-gateway must be"),
        ('polcy = "random"\n' + SERVERS, "unknown setting 'polcy'"),
        ("policy = \n", "not a TOML file"),
    ],
)
def test_bad_client_configs_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "algorithm"),
    [
        (SERVERS, "round_robin"),
        ('policy = "least_outstanding"\n' + SERVERS, "least_conn"),
        ('policy = "hash"\n' + SERVERS, "ip_hash"),
        ('policy = "random"\n' + SERVERS, "random"),
        ("[passive_checks]\nmax_fails = 3\n" + SERVERS, "health_checks"),
        ('[[servers]]\nservice = "a"\nweight = 3\n[[servers]]\nservice = "b"\n', "weighted"),
    ],
)
def test_the_algorithm_is_inferred_from_the_policy(tmp_path: Path, text: str, algorithm: str) -> None:
    assert load_config(write(tmp_path, text)).inferred_algorithm() == algorithm


def instances() -> list[Instance]:
    return [Instance(f"api-gateway-{i}", "api-gateway", f"127.0.1.{i}", 3000, 4000, 100 + i) for i in (1, 2, 3)]


def balancer(tmp_path: Path, text: str = SERVERS) -> ClientSideBalancer:
    started = ClientSideBalancer(load_config(write(tmp_path, text)), tmp_path / "run")
    started.start(instances())
    return started


def refusing(dead: set[str]) -> Attempt:
    def attempt(base_url: str) -> Answer:
        if base_url.removeprefix("http://") in dead:
            raise ConnectionRefusedError(111, "Connection refused")
        return Answer(200, {"x-instance": base_url})

    return attempt


def test_a_refused_get_moves_to_the_next_instance_and_the_log_shows_both_attempts(tmp_path: Path) -> None:
    client = balancer(tmp_path)
    answer = client.send("GET", "/api/count", "127.10.0.1", refusing({"127.0.1.1:3000"}))
    client.stop()
    assert answer.status == 200 and answer.header("X-Instance") == "http://127.0.1.2:3000"
    log = read_access_log(client.access_log)
    assert list(log["upstream_addrs"].iloc[0]) == ["127.0.1.1:3000", "127.0.1.2:3000"]
    tried = attempts(log)
    assert list(tried["failed"]) == [True, False] and list(tried["upstream_status"]) == ["502", "200"]


def test_a_post_whose_instance_reset_the_connection_is_not_sent_again(tmp_path: Path) -> None:
    client = balancer(tmp_path)
    calls: list[str] = []

    def reset(base_url: str) -> Answer:
        calls.append(base_url)
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(ConnectionResetError):
        client.send("POST", "/api/count", "127.10.0.1", reset)
    assert len(calls) == 1  # the instance may have run it: a second instance must not


def test_when_every_instance_is_out_the_client_gets_an_error_at_once(tmp_path: Path) -> None:
    client = balancer(tmp_path)
    everything = {instance.address for instance in instances()}
    with pytest.raises(ConnectionRefusedError):
        client.send("GET", "/api/count", "127.10.0.1", refusing(everything))
    assert sorted(client.out_of_rotation()) == ["api-gateway-1", "api-gateway-2", "api-gateway-3"]
    with pytest.raises(NoLiveInstanceError, match="no live instance of api-gateway"):
        client.send("GET", "/api/count", "127.10.0.1", refusing(set()))


def test_a_503_is_retried_only_when_retry_on_names_it(tmp_path: Path) -> None:
    def failing_first(base_url: str) -> Answer:
        return Answer(503 if base_url.endswith("127.0.1.1:3000") else 200)

    plain = balancer(tmp_path)
    assert plain.send("GET", "/", "c", failing_first).status == 503
    retrying = balancer(tmp_path / "retrying", '[passive_checks]\nretry_on = ["error", "http_503"]\n' + SERVERS)
    assert retrying.send("GET", "/", "c", failing_first).status == 200
