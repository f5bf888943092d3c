"""What a user asks ``harness bench`` for, checked as a whole before anything starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.algorithms import ALGORITHM_NAMES, BALANCERS
from harness.balancers.registry import DEFAULT_BALANCER, kind_of
from harness.checks.distribution import FALSE_ALARM_RATE
from harness.errors import AddressInUseError, SpecError
from harness.k8s.topology import overlay_for
from harness.load.hosts import MAX_LOAD_HOSTS
from harness.load.joining import MAX_JOINED_WORKERS, Joining
from harness.load.workload import Workload
from harness.net import HOSTS_PER_NETWORK, LOOPBACK, MAX_CLIENT_NETWORKS, ClientPopulation, port_is_free
from harness.runtimes.factory import DOCKER_BASES, RUNTIMES
from harness.runtimes.local import MAX_INSTANCES

MAX_USERS = 1000
MAX_DURATION = 3600.0
MAX_LOAD_WORKERS = 16
MAX_RATE = 20_000.0
MAX_CLIENTS = 100_000


@dataclass(frozen=True)
class BenchSpec:
    """One ``harness bench`` invocation: the algorithms to run and how to run each."""

    algorithms: tuple[str, ...]
    backends: int | None = None  # None: 3 for one service, one per service otherwise
    users: int = 10
    duration: float = 5.0
    workers: int | None = None  # None: the config's worker_processes, else 1
    zone: bool = False
    config: Path | None = None
    weights: tuple[int, ...] | None = None
    results_dir: Path = field(default_factory=lambda: Path("results"))
    spawn_rate: float = 100.0
    port: int | None = None  # nginx's listen port on 127.0.0.1; None: a free one
    scenario: str | None = None  # a shipped scenario's name or a path to a scenario file
    balancer: str = DEFAULT_BALANCER
    load_workers: int = 0  # Locust worker processes under a master in the harness; 0: load in-process
    load_hosts: int = 0  # load hosts simulated by network namespaces, a Locust worker on each; 0: none
    joining: Joining | None = None  # the load comes from workers that join from the user's machines
    runtime: str = "local"  # where instances run: local processes, or Docker containers
    docker_base: str = "offline"  # the Docker base image: built from Debian's mirror, or the official one
    k8s_context: str | None = None  # --runtime k8s: the kubeconfig context; None: the current one
    k8s_image: str = "lb-harness/runtime:latest"  # --runtime k8s: the image the cluster's nodes hold
    driver: str = "locust"  # or "wrk": capacity numbers, counts per instance, no per-request records
    rate: float | None = None  # requests per second of an open-model load instead of Locust's closed model
    false_alarm_rate: float = FALSE_ALARM_RATE  # each statistical check's chance of failing a correct config
    upstream: str | None = None  # the nginx upstream or HAProxy backend under test; None: the one the route reaches
    route: str | None = None  # nginx: HOST/PATH the load takes; None: `/` of the default server
    claims_from: Path | None = None  # a config whose claims the run's config must keep (a changed config's check)
    clients: int | None = None  # distinct client addresses the load and the population check send from
    client_networks: int | None = None  # the /24 networks they come from; None: each client its own
    workload: Workload = field(default_factory=Workload)  # short requests, or long-lived sessions

    @property
    def population(self) -> ClientPopulation | None:
        """The clients of --clients and --client-networks; None: each Locust user is a client of its own /24."""
        if self.clients is None:
            return None
        networks = self.client_networks or min(self.clients, MAX_CLIENT_NETWORKS)
        return ClientPopulation(self.clients, networks)

    @property
    def bind_address(self) -> str:
        """Where the balancer's route listens: loopback, or the address workers join the run at."""
        return self.joining.bind if self.joining is not None else LOOPBACK

    def validate(self) -> BenchSpec:
        """Returns self; raises SpecError naming the first option that cannot work."""
        self._check_names_and_ranges()
        self._check_combinations()
        self._check_files()
        return self

    def with_workload(self, workload: Workload) -> BenchSpec:
        """This spec with ``workload`` (a scenario's), refused where this spec cannot drive it."""
        spec = replace(self, workload=workload.validate())
        spec._check_workload()
        spec._check_joining()
        return spec

    def _check_names_and_ranges(self) -> None:
        if not self.algorithms:
            raise SpecError("no algorithm given")
        if self.balancer not in BALANCERS:
            raise SpecError(f"unknown balancer {self.balancer!r}; choose from {', '.join(BALANCERS)}")
        for name in self.algorithms:
            if name not in ALGORITHM_NAMES:
                raise SpecError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHM_NAMES)} or all")
        if self.config is not None and len(self.algorithms) > 1:
            raise SpecError("--config runs one config: give one --algo (or none to infer it from the config)")
        if self.backends is not None and not 1 <= self.backends <= MAX_INSTANCES:
            raise SpecError(f"--backends must be between 1 and {MAX_INSTANCES}, got {self.backends}")
        if not 1 <= self.users <= MAX_USERS:
            raise SpecError(f"--users must be between 1 and {MAX_USERS}, got {self.users}")
        if not 0 < self.duration <= MAX_DURATION:
            raise SpecError(f"--duration must be above 0 and at most {MAX_DURATION:g} s, got {self.duration:g}")
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise SpecError(f"--workers must be between 1 and 64, got {self.workers}")
        if self.weights is not None and any(weight < 1 for weight in self.weights):
            raise SpecError(f"--weights must be positive integers, got {','.join(map(str, self.weights))}")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise SpecError(f"--port must be between 1 and 65535, got {self.port}")
        if self.port is not None and not port_is_free(self.bind_address, self.port):
            raise AddressInUseError(
                f"{self.bind_address}:{self.port} is already in use: choose another --port or leave it out"
            )
        if not 0 <= self.load_workers <= MAX_LOAD_WORKERS:
            raise SpecError(f"--load-workers must be between 0 and {MAX_LOAD_WORKERS}, got {self.load_workers}")
        if not 0 < self.false_alarm_rate < 1:
            raise SpecError(f"--false-alarm-rate must be above 0 and below 1, got {self.false_alarm_rate:g}")
        if self.spawn_rate <= 0:
            raise SpecError(f"--spawn-rate must be above 0, got {self.spawn_rate:g}")
        self._check_population()
        self.workload.validate()

    def _check_population(self) -> None:
        if self.client_networks is not None and self.clients is None:
            raise SpecError("--client-networks spreads the clients of --clients: give --clients too")
        if self.clients is None:
            return
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise SpecError(f"--clients must be between 1 and {MAX_CLIENTS:,}, got {self.clients}")
        networks = self.client_networks or min(self.clients, MAX_CLIENT_NETWORKS)
        if not 1 <= networks <= self.clients:
            raise SpecError(f"--client-networks must be between 1 and --clients ({self.clients}), got {networks}")
        if self.clients > HOSTS_PER_NETWORK * networks:
            raise SpecError(
                f"--clients {self.clients} do not fit in {networks} /24 networks of {HOSTS_PER_NETWORK} hosts: "
                f"give --client-networks {-(-self.clients // HOSTS_PER_NETWORK)} or more"
            )
        if self.rate is not None:
            raise SpecError("--clients sets the addresses of Locust's users; --rate's open model has its own: drop one")

    def _check_combinations(self) -> None:
        """Options that each make sense but not together, or not with this balancer."""
        kind = kind_of(self.balancer)
        if self.load_workers and kind.one_load_process:
            raise SpecError("client-side balancing keeps its picking state in one process: drop --load-workers")
        if kind.in_own_namespace and (self.load_workers or self.driver == "wrk" or self.runtime != "local"):
            raise SpecError(
                "kube-proxy runs with its instances and its load in a network namespace of the run, one process "
                "of local instances: drop --load-workers, --driver wrk and --runtime docker"
            )
        if self.runtime not in RUNTIMES:
            raise SpecError(f"unknown runtime {self.runtime!r}; choose from {', '.join(RUNTIMES)}")
        if self.runtime == "k8s":
            self._check_k8s()
        if self.docker_base not in DOCKER_BASES:
            raise SpecError(f"unknown --docker-base {self.docker_base!r}; choose from {', '.join(DOCKER_BASES)}")
        if self.driver not in ("locust", "wrk"):
            raise SpecError(f"unknown driver {self.driver!r}; choose locust or wrk")
        if self.driver == "wrk" and (not kind.has_address or self.scenario or self.rate or self.load_workers):
            raise SpecError(
                "--driver wrk measures capacity through a balancer's address, without per-request records: "
                "it runs without --balancer client, --scenario, --rate and --load-workers"
            )
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise SpecError(f"--rate must be above 0 and at most {MAX_RATE:g} requests/s, got {self.rate:g}")
        if self.rate is not None and self.load_workers:
            raise SpecError("--rate runs the open-model load in the harness itself: drop --load-workers")
        self._check_workload()
        self._check_load_hosts()
        self._check_joining()

    def _check_load_hosts(self) -> None:
        """Load hosts send short requests from namespaces of the run to a balancer's address."""
        if not self.load_hosts:
            return
        if not 1 <= self.load_hosts <= MAX_LOAD_HOSTS:
            raise SpecError(f"--load-hosts must be between 1 and {MAX_LOAD_HOSTS}, got {self.load_hosts}")
        self._check_balancer_address("--load-hosts sends from hosts of the run's own network to a balancer's address")
        if self.load_workers or self.rate is not None or self.driver == "wrk" or self.workload.chosen:
            raise SpecError(
                "--load-hosts runs one Locust worker of short requests on each host: "
                "drop --load-workers, --rate, --driver wrk and --workload"
            )
        if self.runtime != "local":
            raise SpecError(f"--load-hosts runs local instances in the run's namespace, not --runtime {self.runtime}")

    def _check_balancer_address(self, what: str) -> None:
        """Load from Locust workers elsewhere reaches a balancer that listens on an address of this machine."""
        kind = kind_of(self.balancer)
        if not kind.has_address or kind.in_own_namespace or kind.one_load_process:
            raise SpecError(f"{what}, not through {self.balancer}: choose nginx, haproxy or caddy")

    def _check_joining(self) -> None:
        """Workers from the user's machines send short requests to a balancer's address on this one."""
        joining = self.joining
        if joining is None:
            return
        if not 1 <= joining.count <= MAX_JOINED_WORKERS:
            raise SpecError(f"--join-workers must be between 1 and {MAX_JOINED_WORKERS}, got {joining.count}")
        self._check_balancer_address("--join-workers sends to a balancer's address on this machine")
        if self.load_workers or self.load_hosts or self.rate is not None or self.driver == "wrk":
            raise SpecError(
                "--join-workers runs the whole load on the workers that join: "
                "drop --load-workers, --load-hosts, --rate and --driver wrk"
            )
        if self.workload.chosen or self.clients is not None or self.runtime != "local" or self.scenario:
            raise SpecError(
                "--join-workers sends short requests from each worker's own addresses to local instances, "
                "steady: drop --workload, --clients, --runtime and --scenario"
            )
        if not 0 < joining.timeout <= MAX_DURATION:
            raise SpecError(f"--join-timeout must be above 0 and at most {MAX_DURATION:g} s, got {joining.timeout:g}")
        if not port_is_free(joining.bind, 0):
            raise SpecError(f"--bind {joining.bind} is not an address of this machine")
        if not 1 <= joining.master_port <= 65535 or not port_is_free(joining.bind, joining.master_port):
            raise AddressInUseError(
                f"{joining.bind}:{joining.master_port} cannot take Locust's master: choose another --master-port"
            )

    def _check_workload(self) -> None:
        if self.workload.has_sessions:
            self._check_sessions()
        elif self.workload.over_one_connection:
            self._check_one_connection()

    def _check_one_connection(self) -> None:
        """gRPC and HTTP/2 users run in this process, each on one HTTP/2 connection to the balancer's address."""
        kind, name = kind_of(self.balancer), self.workload.kind
        if not kind.has_address:
            raise SpecError(
                f"--workload {name} sends through a balancer's address, not through {self.balancer}: "
                "choose nginx, haproxy or kube-proxy"
            )
        if self.rate is not None or self.driver == "wrk" or self.load_workers:
            raise SpecError(
                f"--workload {name} runs Locust users that each hold one HTTP/2 connection: "
                "drop --rate, --driver wrk and --load-workers"
            )
        if self.runtime != "local":
            # The container image carries Debian's Python packages, which have no grpcio or hypercorn.
            raise SpecError(f"--workload {name} runs its instances as local processes, not on --runtime {self.runtime}")

    def _check_sessions(self) -> None:
        """Session users run in this process, through one balancer address, on Locust's closed model."""
        kind = kind_of(self.balancer)
        if not kind.has_address:
            raise SpecError(
                f"--workload {self.workload.kind} holds sessions through a balancer's address on this machine, "
                f"not through {self.balancer}: choose nginx, haproxy, caddy or kube-proxy"
            )
        if self.rate is not None or self.driver == "wrk" or self.load_workers:
            raise SpecError(
                f"--workload {self.workload.kind} runs Locust users that each hold one session at a time: "
                "drop --rate, --driver wrk and --load-workers"
            )

    def _check_files(self) -> None:
        if self.config is not None and not self.config.is_file():
            raise SpecError(f"config file not found: {self.config}")
        if (self.upstream or self.route or self.claims_from) and self.config is None:
            raise SpecError("--upstream, --route and --claims-from read your own config: give it with --config")
        if self.upstream == "all" and (self.route or self.scenario):
            raise SpecError("--upstream all judges each upstream on its own route, without a scenario: drop --route")
        if (self.upstream or self.route) and kind_of(self.balancer).group_word is None:
            raise SpecError(
                f"--upstream and --route choose among nginx's upstreams or HAProxy's backends, not {self.balancer}'s"
            )
        if self.claims_from is not None and not self.claims_from.is_file():
            raise SpecError(f"--claims-from: config file not found: {self.claims_from}")
        self._check_results_dir()

    def _check_k8s(self) -> None:
        if not kind_of(self.balancer).runs_in_cluster:
            raise SpecError(
                f"--runtime k8s runs the topology's nginx Deployment, not {self.balancer}: a port-forward reaches "
                "one pod and bypasses kube-proxy; use --balancer kube-proxy on the local runtime for its rules"
            )
        if "ip_hash" in self.algorithms:
            raise SpecError(
                "ip_hash cannot be judged through a port-forward: every client reaches nginx from the same "
                "address, so one pod gets all requests"
            )
        if self.port is not None or self.weights is not None:
            raise SpecError("--runtime k8s takes neither --port (a forwarded port is chosen) nor --weights")
        for algorithm in self.algorithms:
            overlay_for(algorithm)  # an algorithm without an overlay is named before any cluster is asked
        if not self.k8s_image or not self.k8s_image.isprintable() or " " in self.k8s_image:
            raise SpecError(f"--k8s-image must be an image reference, got {self.k8s_image!r}")

    def _check_results_dir(self) -> None:
        directory = self.results_dir
        if not str(directory).isprintable():
            # The path goes into the balancer's config, whose parsers disagree on control characters.
            raise SpecError(f"results directory {str(directory)!r} holds control characters: choose another")
        if "$" in str(directory):
            # nginx reads `$` in a log path as a variable, quoted or not, and then refuses the config.
            raise SpecError(f"results directory {directory} holds a $, which nginx reads as a variable: choose another")
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise SpecError(f"results directory {directory} is not writable")
