"""The checks of server parameters and the requests that vary a hash key (no cluster needed)."""

from pathlib import Path

import pytest

from harness.balancers.haproxy.config import load_config as load_haproxy
from harness.balancers.nginx.config import load_config
from harness.checks.listens import answers_redirect
from harness.checks.servers import (
    backup_takes_over,
    connections_reused,
    each_key_on_one_instance,
    idle_instances,
    in_flight_within_limits,
    keys_spread,
    only_removed_keys_move,
    primaries_take_back,
)
from harness.load.keys import key_plan

CONFIGS = Path(__file__).parents[1] / "configs"


def test_server_claims_come_from_the_config() -> None:
    claims = load_config(CONFIGS / "backup-down" / "nginx.conf").server_claims()
    assert (claims.backup, claims.down, claims.where) == (("app-c",), ("app-d",), "nginx.conf:6")
    hashed = load_config(CONFIGS / "hash-key" / "nginx.conf").server_claims()
    assert (hashed.hash_key, hashed.consistent) == ("$http_x_tenant", True)
    capped = load_config(CONFIGS / "max-conns" / "nginx.conf").server_claims()
    assert (capped.max_conns, capped.shared_counts) == ((("app", 4),), True)
    assert load_config(CONFIGS / "random-two" / "nginx.conf").server_claims().avoids_busy


def test_idle_servers_pass_with_no_request_and_fail_with_their_count() -> None:
    verdicts = idle_instances({"a": 10, "c": 0, "d": 3}, {"c": "backup", "d": "down"}, 13, "nginx.conf:5")
    assert [v.passed for v in verdicts] == [True, False]
    assert verdicts[1].summary == "d (down in nginx.conf:5) got 3 of 13 requests (expected 0)"


def test_a_key_on_two_instances_fails_with_the_key() -> None:
    assert each_key_on_one_instance({"k0": ["a", "a", "a"], "k1": ["b", "b", "b"]}, "$uri", 3).passed
    split = each_key_on_one_instance({"k0": ["a", "b", "a"]}, "$uri", 3)
    assert not split.passed and "$uri='k0' reached a, b" in split.summary


def test_keys_that_all_land_on_one_instance_fail_the_spread() -> None:
    assert not keys_spread({"k0": ["a"], "k1": ["a"]}, 3, "$arg_id").passed
    assert keys_spread({"k0": ["a"], "k1": ["b"]}, 3, "$arg_id").passed


def test_consistent_hashing_fails_when_a_kept_key_moves() -> None:
    before = {"k0": "a", "k1": "b", "k2": "c"}
    assert only_removed_keys_move(before, {"k0": "a", "k1": "b", "k2": "a"}, "c", "$uri").passed
    moved = only_removed_keys_move(before, {"k0": "b", "k1": "b", "k2": "a"}, "c", "$uri")
    assert not moved.passed and "1 of 2 keys it did not hold moved" in moved.summary


def test_max_conns_fails_when_an_instance_held_more_than_its_limit() -> None:
    ok = in_flight_within_limits({"a": 4, "b": 4}, {"a": 4, "b": 4}, [200] * 8 + [502, 502], 10, "x:1")
    assert ok.passed and "2 beyond capacity got 502" in ok.summary
    assert not in_flight_within_limits({"a": 5, "b": 3}, {"a": 4, "b": 4}, [200] * 8, 8, "x:1").passed


@pytest.mark.parametrize(
    ("key", "path", "headers", "same_source"),
    [
        ("$request_uri", "/api/key-k3/count?key=k3", {}, False),
        ("$arg_user", "/api/key-k3/count?user=k3", {}, False),
        ("$http_x_tenant", "/api/key-k3/count", {"x-tenant": "k3"}, False),
        ("$cookie_session", "/api/key-k3/count", {"Cookie": "session=k3"}, False),
        ("$remote_addr", "/api/key-k3/count", {}, True),
    ],
)
def test_a_key_plan_sets_the_variable_the_key_reads(
    key: str, path: str, headers: dict[str, str], same_source: bool
) -> None:
    plan = key_plan(key)
    first, second = plan.request(3, client=0), plan.request(3, client=1)
    assert (first.path, first.headers) == (path, headers)
    assert (first.source == second.source) is same_source


def test_a_key_the_harness_cannot_set_is_said() -> None:
    assert key_plan("$host").varies == () and key_plan("$host").fixed == ("host",)


def test_a_redirect_compares_status_and_location() -> None:
    ok = answers_redirect("80", "a.example", 301, "https://a.example/x", 301, "https://a.example/x", "f:1")
    assert ok.passed and ok.check == "listen 80 answers 301 to https"
    assert not answers_redirect("80", "a.example", 200, "", 301, "https://a.example/x", "f:1").passed


def test_a_relative_redirect_is_compared_by_its_path() -> None:
    got = "http://old.example:28990/new/api/count"
    assert answers_redirect("80", "old.example", 301, got, 301, "/new/api/count", "f:1").passed


def test_keepalive_fails_when_every_request_opened_a_connection() -> None:
    assert connections_reused({"a": 500, "b": 500}, {"a": 6, "b": 5}, 16, "x:1").passed
    none = connections_reused({"a": 500, "b": 500}, {"a": 500, "b": 500}, 16, "x:1")
    assert not none.passed and 'proxy_set_header Connection ""' in none.summary


def test_backup_takeover_and_hand_back_name_what_went_wrong() -> None:
    assert backup_takes_over([(200, "c")] * 10, ["c"]).passed
    failed = backup_takes_over([(200, "c"), (502, "")], ["c"])
    assert not failed.passed and "502 from nginx" in failed.summary
    assert primaries_take_back(10.2, 12.0, "x:1").passed
    assert not primaries_take_back(None, 12.0, "x:1").passed


def test_haproxy_server_claims_come_from_its_backend() -> None:
    claims = load_haproxy(CONFIGS / "haproxy" / "backup-disabled.cfg").server_claims()
    assert (claims.backup, claims.down, claims.shared_counts) == (("app-c",), ("app-d",), True)
    assert claims.where == "backup-disabled.cfg:14: backend app"
    assert (claims.detect_s, claims.recovery_s) == (1.5, 1.5)
