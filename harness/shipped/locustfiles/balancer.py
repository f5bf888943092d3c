"""Locust against a balancer, with per-instance counts; with ``--algo`` it starts the cluster itself.

    locust -f locustfiles/balancer.py --algo least_conn                 # web UI, Backends tab
    locust -f locustfiles/balancer.py --algo ip_hash --balancer haproxy --headless -u 10 -t 10s
    locust -f locustfiles/balancer.py --host http://127.0.0.1:PORT      # a balancer you started

With ``--algo`` the harness starts the algorithm's shipped config (or ``--lb-config``) over
real instances when Locust starts, points Locust's host at it, mounts the Backends tab on
the web UI, and stops everything when Locust quits. Each simulated user sends from its own
loopback address (127.10.0.1, 127.10.1.1, ...), so ip_hash sees distinct clients. Every
response names its instance in ``X-Instance``; the counts per instance are printed when
Locust stops. ``harness bench`` uses the same user class through Locust's library API.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from harness.algorithms import ALGORITHMS
from harness.backends import INSTANCE_HEADER
from harness.cluster import Cluster
from harness.console.live import LiveBackends
from harness.console.web import attach
from harness.errors import HarnessError
from harness.expectations import expected_shares
from harness.infra import describe
from harness.load.users import make_user_class
from harness.net import is_loopback
from harness.plan import open_cluster, prepare
from harness.results.store import new_run_dir
from harness.spec import BenchSpec

BalancerClient = make_user_class(host=None)
per_instance: Counter[str] = Counter()
clusters: list[Cluster] = []
consoles: list[LiveBackends] = []


@events.init_command_line_parser.add_listener
def add_harness_options(parser: Any) -> None:
    group = parser.add_argument_group("lb-harness", "start a balancer over real instances for this run")
    group.add_argument("--algo", default="", help="an algorithm of the harness: start its cluster and use it as host")
    group.add_argument("--balancer", default="nginx", choices=["nginx", "haproxy"], help="the balancer (default nginx)")
    group.add_argument("--backends", type=int, default=None, help="instances to start (default 3)")
    group.add_argument("--lb-config", default="", help="your own balancer config instead of the shipped one")
    group.add_argument("--lb-results-dir", default="results", help="where the run's directory goes")
    group.add_argument(
        "--i-own-this-host",
        action="store_true",
        help="allow a --host outside 127.0.0.0/8 (load on a machine that is not yours is an attack)",
    )


@events.init.add_listener
def start_cluster(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return  # a worker: the master owns the cluster and checked the host
    if not options.algo:
        host = urllib.parse.urlsplit(environment.host or "").hostname or ""
        if host and not is_loopback(host) and not options.i_own_this_host:
            sys.stderr.write(
                f"harness: error: --host {environment.host} is outside 127.0.0.0/8: "
                "pass --i-own-this-host if you own it and mean to load it\n"
            )
            sys.exit(2)
        return
    spec = BenchSpec(
        algorithms=(options.algo,),
        backends=options.backends,
        balancer=options.balancer,
        config=Path(options.lb_config) if options.lb_config else None,
        results_dir=Path(options.lb_results_dir),
    )
    try:
        plan = prepare(spec, command="locust")
        name, config = plan.only.algorithm.name, plan.only.config
        cluster = open_cluster(plan, plan.only, new_run_dir(spec.results_dir, f"locust-{name}")).start()
    except HarnessError as exc:
        sys.stderr.write(f"harness: error: {exc}\n")
        sys.exit(exc.exit_code)
    clusters.append(cluster)
    environment.host = cluster.url
    print(describe())
    print(f"{name} on {config.balancer}: {cluster.url} over {len(cluster.instances)} instances")
    if environment.web_ui is not None:
        expected = expected_shares(ALGORITHMS[name], config, cluster.instances, cluster.weights_by_instance)
        consoles.append(LiveBackends(cluster, expected))
        attach(environment, consoles[-1])


# Registered after start_cluster, so it runs after the cluster is up: listeners run in order.
@events.init.add_listener
def refresh_loop_clock(**_: Any) -> None:
    # gevent's loop reads the clock once per turn and counts a new timer from that reading.
    # The imports above are seconds of CPU during which the loop does not turn, so Locust's
    # --run-time timer, started right after this event, would count from a time that long
    # gone and fire that much early: with --host, a 10 s run loaded 7.2 s and a 3 s run sent
    # no request at all. Starting a cluster (--algo) happens to turn the loop; --host does not.
    gevent.get_hub().loop.update_now()


@events.request.add_listener
def count_instance(response: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    headers = getattr(response, "headers", None) or {}
    per_instance[headers.get(INSTANCE_HEADER) or "(no instance)"] += 1


@events.quitting.add_listener
def print_instances_and_stop(**_: Any) -> None:
    total = sum(per_instance.values()) or 1
    print("requests per instance:")
    for instance, count in sorted(per_instance.items()):
        print(f"  {instance:<20} {count:>8}  {count / total:6.1%}")
    while consoles:
        consoles.pop().rollback_all()
    while clusters:
        clusters.pop().stop()
