"""``harness up``: one algorithm's cluster, up until Ctrl-C, for Locust's own CLI or UI or curl."""

from __future__ import annotations

import gevent.event
from rich.console import Console
from rich.table import Table

from harness.algorithms import ALGORITHMS
from harness.infra import shipped_locustfile, shown_path
from harness.load.route import FixedRoute, Route
from harness.plan import open_cluster, prepare
from harness.results.store import new_run_dir
from harness.spec import BenchSpec


def up(spec: BenchSpec, console: Console) -> int:
    """Starts the cluster, prints where it is, and keeps it up until Ctrl-C or SIGTERM."""
    plan = prepare(spec, command="up")
    name = plan.only.algorithm.name
    run_dir = new_run_dir(spec.results_dir, f"up-{name}")
    try:
        with open_cluster(plan, plan.only, run_dir) as cluster:
            table = Table(title=f"{name}: {ALGORITHMS[name].claim}", title_justify="left")
            for column in ("instance", "address", "control", "pid"):
                table.add_column(column)
            for instance in cluster.instances:
                pid = str(instance.pid) if instance.pid else "-"  # a pod's process is not on this machine
                table.add_row(instance.name, instance.address, instance.control_url, pid)
            console.print(table)
            console.print(f"{cluster.balancer.name}: [bold]{cluster.url}[/]  config: {cluster.balancer.config_path}")
            console.print(f"try:   {curl_command(cluster.route)}", highlight=False, soft_wrap=True)
            console.print(f"load:  locust -f {shown_path(shipped_locustfile())} --host {cluster.url}")
            console.print("Ctrl-C stops everything.")
            gevent.event.Event().wait()
    except KeyboardInterrupt:
        # Ctrl-C is how this command ends: the cluster is already stopped when we get here.
        console.print(f"stopped {spec.balancer} and every instance")
    return 0


def curl_command(route: Route) -> str:
    """The curl line that reaches an instance on ``route``: its Host, its location, its CA."""
    if not isinstance(route, FixedRoute):
        return "curl -s <an instance's address>/api/count"
    host = f"-H 'Host: {route.host}' " if route.host else ""
    ca = f"--cacert {route.ca_file} " if route.ca_file else ""
    return f"curl -s {ca}{host}{route.url}{route.path_for('/api/count')}"
