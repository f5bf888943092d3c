"""Servers that join a running HAProxy through its runtime API, and the replay of such a worker."""

import numpy as np
import pandas as pd

from harness.balancers.haproxy.replay import grown_in_place, not_before_joining
from harness.balancers.haproxy.runtime_servers import REGISTERED, ServerLine, add_servers, additions
from harness.models.nginx_round_robin import LeastConn
from harness.models.peers import ModelPeer

BEFORE = """global
    stats socket abns@x level admin

backend api
    balance leastconn
    server api-1 127.0.1.1:4001
    server api-2 127.0.1.2:4002 check inter 1s
"""


def test_only_added_servers_go_through_the_runtime_api() -> None:
    after = BEFORE + "    server api-3 127.0.1.3:4003 check inter 1s\n"
    assert additions(BEFORE, after) == [ServerLine("api", "api-3", ("127.0.1.3:4003", "check", "inter", "1s"))]
    assert additions(BEFORE, BEFORE.replace("4002", "4012")) is None  # a changed server: a reload
    assert additions(BEFORE, BEFORE.replace("    server api-1 127.0.1.1:4001\n", "")) is None  # removed


def test_each_added_server_is_enabled_and_its_checks_started() -> None:
    sent: list[str] = []

    def command(line: str) -> str:
        sent.append(line)
        return REGISTERED + "\n" if line.startswith("add server") else "\n"

    line = ServerLine("api", "api-3", ("127.0.1.3:4003", "check"))
    assert add_servers([line], command) is None
    assert sent == ["add server api/api-3 127.0.1.3:4003 check", "enable server api/api-3", "enable health api/api-3"]


def test_a_refusal_is_returned_for_a_reload_instead() -> None:
    refused = add_servers(
        [ServerLine("api", "api-3", ("127.0.1.3:4003",))], lambda line: "Backend is using a static LB"
    )
    assert refused == "add server api/api-3: Backend is using a static LB"


def peer(name: str) -> ModelPeer:
    return ModelPeer(name)


def test_a_server_added_in_place_joins_the_workers_first_generation() -> None:
    generations = [[peer("a"), peer("b")], [peer("a"), peer("b"), peer("c")]]
    grown, joined = grown_in_place(generations, [0.0, 10.0], [10.2])
    assert [p.name for p in grown[0]] == ["a", "b", "c"] and joined == {"c": 10200}


def test_before_it_joined_a_server_is_never_allowed_and_never_the_fewest() -> None:
    peers = [peer("a"), peer("b"), peer("c")]
    picks = pd.DataFrame({"ms": [10_000, 10_300]})
    allowed = not_before_joining(LeastConn(peers).allowed, peers, picks, {"c": 10_200})
    low = high = np.array([[2, 1, 0], [2, 1, 0]])
    # Before c joined, b had the fewest; after, c.
    assert allowed(low, high).tolist() == [[False, True, False], [False, False, True]]
