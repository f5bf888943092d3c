"""The command line's options: one parser per command, and the BenchSpec its options make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from harness import infra
from harness.algorithms import ALGORITHM_NAMES, BALANCERS, algorithms_for
from harness.checks.distribution import FALSE_ALARM_RATE
from harness.errors import SpecError
from harness.k8s.topology import k8s_algorithms
from harness.load.joining import LOCUST_MASTER_PORT, Joining
from harness.load.worker_options import add_worker_arguments
from harness.load.workload import WORKLOADS, Workload
from harness.net import LOOPBACK
from harness.reports.diff import Thresholds
from harness.scenarios.model import shipped_scenarios
from harness.spec import BenchSpec


class _OneLineParser(argparse.ArgumentParser):
    """Bad options get one clear line and exit code 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"harness: error: {message} (see {self.prog} --help)\n")


def _weights(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights must be integers separated by commas, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="harness", description="Test and benchmark load-balancer configurations.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    run = commands.add_parser("bench", help="run algorithms on a real balancer over real backends, check what it did")
    _add_cluster_options(run, algo_default="all; with --config, inferred from the config")
    _add_load_options(run)
    _add_joining_options(run)
    cluster = commands.add_parser("up", help="start one algorithm's cluster and keep it up until Ctrl-C")
    _add_cluster_options(cluster, algo_default="round_robin")
    console = _add_ui_parser(commands)
    report = commands.add_parser("report", help="write report.html into a run directory (harness bench does it too)")
    report.add_argument("run", type=Path, help="a run directory under results/")
    matrix = commands.add_parser("matrix", help="every algorithm on every balancer, one table (CSV and HTML too)")
    _add_load_options(matrix)
    matrix.add_argument("--backends", type=int, help="instances to start (default 3, or one per service)")
    matrix.add_argument("--results-dir", type=Path, default=Path("results"), help="where run directories go")
    matrix.add_argument("--scenarios", action="store_true", help="also run every shipped scenario")
    k8s_commands = _add_k8s_parsers(commands)
    commands.add_parser(
        "doctor",
        help="what the harness needs on this machine, found or missing, and one line to install what is missing; "
        "exit code 1 when the default `harness bench` (nginx) cannot run",
    )
    _add_compare_parser(commands)
    worker = commands.add_parser(
        "worker", help="a Locust worker on this host that joins a run's master and sends its load (another machine's)"
    )
    add_worker_arguments(worker)
    compare = commands.add_parser(
        "compare-balancers",
        help="run one algorithm (and scenario) on every balancer that ships a config for it, side by side",
    )
    _add_cluster_options(compare, algo_default="the scenario's")
    _add_load_options(compare)
    for command in (run, cluster, console, matrix, compare, *k8s_commands.choices.values()):
        command.add_argument(
            "--infra-dir",
            type=Path,
            help="your own folder of configs, scenarios and manifests, overriding the shipped ones file by file "
            f"(default: ${infra.ENVIRONMENT_VARIABLE}, else ./infra when present)",
        )
    return parser


def _add_ui_parser(commands: Any) -> argparse.ArgumentParser:
    console: argparse.ArgumentParser = commands.add_parser(
        "ui", help="start one algorithm's cluster with Locust's web UI and the Backends console, until Ctrl-C"
    )
    _add_cluster_options(console, algo_default="round_robin")
    console.add_argument("--web-host", default=LOOPBACK, help=f"the web UI's address (default {LOOPBACK})")
    console.add_argument("--web-port", type=int, default=8089, help="the web UI's port (default 8089)")
    console.add_argument(
        "--web-any-interface",
        action="store_true",
        help="allow a --web-host outside loopback: anyone who reaches it can start load and kill instances",
    )
    console.add_argument("--load-workers", type=int, default=0, help="Locust worker processes under the UI's master")
    _add_workload_options(console)
    return console


def _add_k8s_parsers(commands: Any) -> Any:
    k8s = commands.add_parser(
        "k8s", help="Kubernetes: validate and lint the manifests, render a run's topology, build its image"
    )
    k8s_commands = k8s.add_subparsers(dest="k8s_command", required=True, parser_class=_OneLineParser)
    for name, text in (
        ("validate", "every manifest against the official schemas of the supported Kubernetes releases"),
        ("lint", "selectors, ports, Ingress backends, probes, kustomizations; readiness against passive checks"),
    ):
        check = k8s_commands.add_parser(name, help=text)
        check.add_argument("paths", nargs="*", type=Path, help="files or directories (default: the infra folder's k8s)")
    render = k8s_commands.add_parser("render", help="print the objects --runtime k8s applies for an algorithm (YAML)")
    render.add_argument("--algo", default="round_robin", help="the algorithm's overlay (default round_robin)")
    render.add_argument("--config", type=Path, help="your own nginx config instead of the algorithm's")
    render.add_argument("--backends", type=int, default=3, help="api-gateway replicas (default 3)")
    render.add_argument("--image", default="lb-harness/runtime:latest", help="the image the nodes hold")
    image = k8s_commands.add_parser("image", help="build the harness's image on the Docker engine and tag it")
    image.add_argument("--tag", default="lb-harness/runtime:latest", help="the tag to give it (default: latest)")
    image.add_argument("--docker-base", default="offline", help="offline (built from Debian's mirror) or official")
    return k8s_commands


def _add_compare_parser(commands: Any) -> None:
    diff = commands.add_parser(
        "compare", help="what changed between two runs of the same spec; exit code 1 on a regression"
    )
    diff.add_argument("run_a", type=Path, help="the baseline run directory")
    diff.add_argument("run_b", type=Path, help="the run to judge against it")
    defaults = Thresholds()
    diff.add_argument("--share-points", type=float, default=defaults.share_points, help="allowed move of a share")
    diff.add_argument("--latency-ratio", type=float, default=defaults.latency_ratio, help="latency: allowed ratio")
    diff.add_argument("--latency-ms", type=float, default=defaults.latency_ms, help="latency: allowed step (ms)")
    diff.add_argument("--tail-ratio", type=float, default=defaults.tail_ratio, help="p95/p99: allowed ratio")
    diff.add_argument("--tail-ms", type=float, default=defaults.tail_ms, help="p95/p99: allowed step (ms)")


def _add_load_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    command.add_argument(
        "--clients",
        type=int,
        help="distinct client addresses the users send from in turn, each checked against the algorithm's "
        "model (ip_hash, hash $remote_addr); default: each user its own",
    )
    command.add_argument(
        "--client-networks",
        type=int,
        help="the /24 networks --clients come from (clients behind 4 NAT addresses: --clients 4); "
        "default: each client its own",
    )
    command.add_argument("--duration", type=float, default=5.0, help="seconds of load per algorithm (default 5)")
    command.add_argument(
        "--driver",
        default="locust",
        help="locust (default), or wrk: capacity numbers with the split per instance, no per-request records",
    )
    command.add_argument(
        "--rate",
        type=float,
        help="open-model load: this many requests/s whatever the answers (instead of --users in a closed loop)",
    )
    command.add_argument(
        "--false-alarm-rate",
        type=float,
        default=FALSE_ALARM_RATE,
        help=f"each statistical check's chance of failing a correct config (default {FALSE_ALARM_RATE:g})",
    )
    command.add_argument(
        "--load-workers",
        type=int,
        default=0,
        help="run Locust distributed: a master plus this many worker processes on loopback (default 0: in-process)",
    )
    command.add_argument(
        "--load-hosts",
        type=int,
        default=0,
        help="send the load from this many hosts, simulated by network namespaces the run creates, "
        "a Locust worker on each (default 0: from this process)",
    )
    command.add_argument(
        "--scenario",
        help=f"faults on a timeline: a shipped scenario ({_scenario_names()}) "
        "or a path to a scenario file; its duration replaces --duration",
    )
    _add_workload_options(command)


def _add_workload_options(command: argparse.ArgumentParser) -> None:
    defaults = Workload()
    command.add_argument(
        "--workload",
        default=defaults.kind,
        help=f"what each user does: {', '.join(WORKLOADS)} (requests: short GETs, default; the others hold "
        "long-lived sessions one after another; mixed: short requests and WebSocket sessions; grpc: unary "
        "calls over one HTTP/2 connection per user, through a route that passes gRPC; http2: GETs the same "
        "way, through a route that takes HTTP/2)",
    )
    command.add_argument(
        "--session-hold",
        type=float,
        default=defaults.hold,
        help=f"a session's mean length in seconds (default {defaults.hold:g})",
    )
    command.add_argument(
        "--session-durations",
        default=defaults.durations,
        help="session lengths: exponential around --session-hold (default) or fixed",
    )
    command.add_argument(
        "--session-every",
        type=float,
        default=defaults.every,
        help=f"a WebSocket message, SSE event or gRPC call this often, in seconds (default {defaults.every:g}; "
        "gRPC: 0 for back to back)",
    )
    command.add_argument(
        "--session-share",
        type=float,
        default=defaults.session_share,
        help=f"mixed: the share of a user's turns that open a session (default {defaults.session_share:g})",
    )


def _workload(args: argparse.Namespace) -> Workload:
    if not hasattr(args, "workload"):
        return Workload()
    return Workload(args.workload, args.session_hold, args.session_durations, args.session_every, args.session_share)


def _scenario_names() -> str:
    # The help is built before the options are read: a bad $HARNESS_INFRA_DIR is refused in
    # one line by the command itself, not by its help text.
    try:
        return ", ".join(shipped_scenarios())
    except SpecError:
        return "see the infra folder's scenarios"


def _add_cluster_options(command: argparse.ArgumentParser, algo_default: str) -> None:
    names = ", ".join(ALGORITHM_NAMES)
    command.add_argument(
        "--balancer",
        default="nginx",
        help=f"the balancer under test: {', '.join(BALANCERS)} (client: no balancer; default nginx)",
    )
    command.add_argument("--algo", default=None, help=f"one of {names}, or all (default: {algo_default})")
    command.add_argument(
        "--config",
        type=Path,
        help="your own config for --balancer (nginx.conf, haproxy.cfg, a Caddyfile, a client-side TOML or a "
        "Service manifest); its servers name services",
    )
    command.add_argument(
        "--upstream",
        "--backend",
        dest="upstream",
        help="the nginx upstream or HAProxy backend under test, or all (each in turn; default: the one `/` reaches)",
    )
    command.add_argument(
        "--route", help="HOST/PATH the load takes, e.g. api.example.com/v1/ (default: `/` of the default server)"
    )
    command.add_argument(
        "--claims-from",
        type=Path,
        help="hold --config to the claims of this config (e.g. the one in production before your change)",
    )
    command.add_argument("--backends", type=int, help="instances to start (default 3, or one per service)")
    command.add_argument("--workers", type=int, help="nginx worker_processes (default: the config's, else 1)")
    command.add_argument("--zone", action="store_true", help="add a shared memory zone to the upstream")
    command.add_argument("--weights", type=_weights, help="per-instance weights, e.g. 3,1,1 (overrides the config)")
    command.add_argument("--port", type=int, help="the balancer's listen port on 127.0.0.1 (default: a free one)")
    command.add_argument("--results-dir", type=Path, default=Path("results"), help="where run directories go")
    command.add_argument(
        "--runtime",
        default="local",
        help="where instances run: local (processes, default), docker (containers) or k8s (the kubeconfig's cluster)",
    )
    command.add_argument("--k8s-context", help="--runtime k8s: the kubeconfig context (default: the current one)")
    command.add_argument(
        "--k8s-image",
        default="lb-harness/runtime:latest",
        help="--runtime k8s: the harness's image as the cluster's nodes know it (see infra/k8s/README.md)",
    )
    command.add_argument(
        "--docker-base",
        default="offline",
        help="docker's base image: offline (built from Debian's mirror, no registry; default) or official",
    )


def _add_joining_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--join-workers",
        type=int,
        help="send the load from this many Locust workers of other machines, which join the run with "
        "`harness worker --master ADDR:PORT` (the run waits for them)",
    )
    command.add_argument(
        "--bind",
        help=f"with --join-workers: the address the balancer's route and Locust's master listen on, one the "
        f"workers reach (default {LOOPBACK}; 0.0.0.0 for every address)",
    )
    command.add_argument(
        "--master-port", type=int, help=f"with --join-workers: Locust's master port (default {LOCUST_MASTER_PORT})"
    )
    command.add_argument(
        "--join-timeout", type=float, help="with --join-workers: how long to wait for them, in seconds (default 300)"
    )


def _joining(args: argparse.Namespace) -> Joining | None:
    """The workers that join the run, from --join-workers and the options that go with it."""
    count = getattr(args, "join_workers", None)
    given = {name: getattr(args, name, None) for name in ("bind", "master_port", "join_timeout")}
    if count is None:
        if any(value is not None for value in given.values()):
            raise SpecError("--bind, --master-port and --join-timeout go with --join-workers N")
        return None
    chosen = {"bind": given["bind"], "master_port": given["master_port"], "timeout": given["join_timeout"]}
    return Joining(count, **{name: value for name, value in chosen.items() if value is not None})


def spec_from_args(args: argparse.Namespace) -> BenchSpec:
    if args.command == "compare-balancers" and args.algo is None and not args.scenario:
        algorithms: tuple[str, ...] = ("health_checks",)
    elif args.command in ("up", "ui") and args.algo is None and args.config is None:
        algorithms = ("round_robin",)
    elif args.algo is None and getattr(args, "scenario", None):
        algorithms = ()  # the scenario names its algorithm
    elif (args.algo == "all" or (args.algo is None and args.config is None)) and args.runtime == "k8s":
        algorithms = k8s_algorithms()
    elif args.algo == "all" or (args.algo is None and args.config is None):
        algorithms = algorithms_for(args.balancer)
    elif args.algo is None:
        algorithms = ()
    else:
        algorithms = (args.algo,)
    return BenchSpec(
        algorithms=algorithms,
        backends=args.backends,
        users=getattr(args, "users", 10),
        duration=getattr(args, "duration", 5.0),
        workers=args.workers,
        zone=args.zone,
        config=args.config,
        weights=args.weights,
        results_dir=args.results_dir,
        port=args.port,
        scenario=getattr(args, "scenario", None),
        balancer=args.balancer,
        load_workers=getattr(args, "load_workers", 0),
        load_hosts=getattr(args, "load_hosts", 0),
        joining=_joining(args),
        rate=getattr(args, "rate", None),
        false_alarm_rate=getattr(args, "false_alarm_rate", FALSE_ALARM_RATE),
        driver=getattr(args, "driver", "locust"),
        runtime=args.runtime,
        docker_base=args.docker_base,
        k8s_context=args.k8s_context,
        k8s_image=args.k8s_image,
        upstream=args.upstream,
        route=args.route,
        claims_from=args.claims_from,
        clients=getattr(args, "clients", None),
        client_networks=getattr(args, "client_networks", None),
        workload=_workload(args),
    )
