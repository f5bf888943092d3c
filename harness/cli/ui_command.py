"""``harness ui``: a cluster with Locust's web UI and the Backends console, until Ctrl-C."""

from __future__ import annotations

from rich.console import Console

from harness.console.session import ConsoleSession
from harness.errors import SpecError
from harness.net import is_loopback, port_is_free
from harness.plan import prepare
from harness.results.store import new_run_dir
from harness.spec import BenchSpec


def ui(spec: BenchSpec, console: Console, web_host: str, web_port: int, any_interface: bool) -> int:
    """Starts everything, prints where the UI is, and keeps it up until Ctrl-C or SIGTERM."""
    plan = prepare(spec, command="ui")
    if not any_interface and not is_loopback(web_host):
        raise SpecError(f"--web-host {web_host} is not a loopback address: add --web-any-interface to serve it there")
    if not port_is_free(web_host, web_port):
        raise SpecError(f"{web_host}:{web_port} is already in use: choose another --web-port")
    name, config = plan.only.algorithm.name, plan.only.config
    run_dir = new_run_dir(spec.results_dir, f"ui-{name}")
    try:
        with ConsoleSession(plan, run_dir, web_host, web_port) as session:
            console.print(
                f"{name} on {config.balancer}: {len(session.cluster.instances)} instances, "
                f"balancer {session.cluster.url}"
            )
            console.print(
                f"Locust web UI: [bold]{session.url}[/]  (Backends tab; fault buttons at {session.url}/backends)"
            )
            console.print("Ctrl-C stops Locust, the balancer and every instance.")
            session.wait()
    except KeyboardInterrupt:
        console.print(f"stopped Locust, {config.balancer} and every instance; journal in {run_dir}")
    return 0
