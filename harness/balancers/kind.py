"""What the core asks of a balancer, answered by one object in the balancer's own folder.

Each balancer (``nginx/``, ``haproxy/``, ``client/``, ``kubeproxy/``) has a ``kind.py`` with a
``BalancerKind``: its name, the config it ships for each algorithm (or why none shows an
algorithm on it), how to read a user's config, check and name its binary, make a balancer
for a run, and which of the harness's order checks its algorithms allow. The core looks a
kind up by name in ``harness.balancers.registry`` and never compares balancer names itself.
Each kind imports its balancer's modules only when asked, so the registry stays cheap to import.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from harness.balancers.base import Balancer, BalancerConfig
from harness.errors import SpecError
from harness.infra import infra_path
from harness.net import LOOPBACK
from harness.runtimes.base import BalancerContainer, Instance, Runtime

if TYPE_CHECKING:
    import pandas as pd

    from harness.checks.fault_rows import FailoverRow
    from harness.checks.verdict import Verdict
    from harness.models.peers import Prediction
    from harness.results.faults import FaultRecord


@dataclass(frozen=True)
class BalancerSettings:
    """How a run asks for its balancer; each balancer takes what applies to it."""

    workers: int = 1
    zone: bool = False
    weights: dict[str, int] | None = None  # per instance name, overriding the config
    port: int | None = None  # None: a free port
    container: BalancerContainer | None = None  # run it in a container of this runtime
    address: str = LOOPBACK  # where the route's listen is: loopback, or an address other machines reach


@dataclass(frozen=True)
class FaultRun:
    """What a fault scenario recorded, for the balancer's own failover analysis."""

    records: Sequence[FaultRecord]  # each fault: when it was injected and rolled back
    frame: pd.DataFrame  # the clients' records
    steady: pd.DataFrame  # the clients' records before the first fault: the latency baseline
    load_end: float
    method: str  # the scenario's request method
    access_log: Path  # the balancer's own record
    workers: int
    zone: bool  # the workers share their counts
    algorithm: str


@dataclass(frozen=True)
class PicksRun:
    """What a steady run leaves for a replay of the balancer's picks through its algorithm's model."""

    access_log: Path  # the balancer's own record, complete once it stopped
    # When the balancer started and each reload began, with the group's instances it rendered.
    generations: Sequence[tuple[float, Sequence[Instance]]]
    weights: Mapping[str, int] | None  # --weights by instance
    workers: int
    zone: bool
    records: pd.DataFrame | None = None  # the clients' records, for a balancer that logs no request
    # When a generation took effect in the running worker (HAProxy's runtime API), not a new one.
    in_place: Sequence[float] = ()


class FailoverWatch(Protocol):
    """Watches a balancer during a fault scenario and then judges what it did about each fault."""

    def stop(self) -> None:
        """Stops what the watch samples while the load runs (nothing, for most balancers)."""
        ...

    def analyze(self, run: FaultRun) -> tuple[list[Verdict], list[FailoverRow]]: ...


class BalancerKind(ABC):
    name: ClassVar[str]
    infra_folder: ClassVar[str]  # where its shipped configs live, under the infra directory
    shipped: ClassVar[Mapping[str, str]]  # algorithm -> the shipped config that shows it
    unshipped: ClassVar[Mapping[str, str]] = {}  # algorithm -> why no shipped config shows it here
    # nginx's least_conn breaks a tie between servers with as few connections by smooth weighted
    # round robin, so one request at a time follows the weighted order.
    least_conn_ties_by_weight: ClassVar[bool] = False
    # What it runs with. Client-side balancing has no address (each client picks for itself) and
    # keeps its picking state in the load's one process; kube-proxy's rules pick per connection and
    # live, with the instances and the load, in a network namespace of the run.
    has_address: ClassVar[bool] = True
    one_load_process: ClassVar[bool] = False
    in_own_namespace: ClassVar[bool] = False
    shipped_grpc: ClassVar[Mapping[str, str]] = {}  # algorithm -> its shipped config that passes gRPC
    shipped_http2: ClassVar[Mapping[str, str]] = {}  # algorithm -> its shipped config that takes plain HTTP/2
    balances_connections: ClassVar[bool] = False  # picks per connection, not per request
    group_word: ClassVar[str | None] = None  # "upstream", "backend": a config of several groups, one under test
    runs_in_cluster: ClassVar[bool] = False  # --runtime k8s runs it as the topology's own Deployment
    refused_commands: ClassVar[Mapping[str, str]] = {}  # a CLI command it cannot run under, and why
    # The module of its replay: replay_run(config, run) and, where an algorithm hashes the
    # client's address, client_address_model(config, instances, weights). None: no model yet.
    replay_module: ClassVar[str | None] = None

    def ships(self, algorithm: str) -> bool:
        return algorithm in self.shipped

    def shipped_config(self, algorithm: str, grpc: bool = False, http2: bool = False) -> Path:
        """The shipped config that shows ``algorithm`` here (passing gRPC, with ``grpc``; taking plain
        HTTP/2, with ``http2``); SpecError saying why when none does."""
        if grpc or http2:
            configs, what = (self.shipped_grpc, "passes gRPC") if grpc else (self.shipped_http2, "takes HTTP/2")
            if algorithm not in configs:
                passes = ", ".join(sorted(configs)) or "none"
                raise SpecError(
                    f"no shipped {self.name} config {what} with {algorithm} (those that do: {passes}); "
                    "pass --config with your own"
                )
            return infra_path(self.infra_folder, configs[algorithm])
        if algorithm not in self.shipped:
            why = self.unshipped.get(algorithm, "no shipped config shows it")
            raise SpecError(f"no shipped {self.name} config for {algorithm}: {why}")
        return infra_path(self.infra_folder, self.shipped[algorithm])

    def run_context(self, config: BalancerConfig) -> contextlib.AbstractContextManager[object]:
        """What a run of ``config`` happens inside (kube-proxy: a network namespace of its own)."""
        return contextlib.nullcontext()

    def watch_faults(self, balancer: Balancer, config: BalancerConfig) -> FailoverWatch:
        """Starts watching ``balancer`` for a fault scenario; SpecError where scenarios do not run."""
        raise SpecError(f"fault scenarios do not run on {self.name}")

    def replay(self, config: BalancerConfig, run: PicksRun) -> list[Verdict]:
        """The balancer's picks replayed through the model of its algorithm: the verdicts of
        ``replay_module``'s ``replay_run``, or N/A where the balancer has no model."""
        from harness.checks.replay import REPLAY_CHECK
        from harness.checks.verdict import not_applicable

        if self.replay_module is None or (not run.access_log.exists() and run.records is None):
            return [not_applicable(REPLAY_CHECK, f"no model of {self.name}'s picks yet")]
        module = importlib.import_module(self.replay_module)
        return cast("list[Verdict]", module.replay_run(config, run))

    def client_model(
        self, config: BalancerConfig, instances: Sequence[Instance], weights: Mapping[str, int] | None
    ) -> tuple[str, Callable[[str], Prediction]] | None:
        """The model naming each client address's instance, where the algorithm hashes the address."""
        if self.replay_module is None:
            return None
        model = getattr(importlib.import_module(self.replay_module), "client_address_model", None)
        if model is None:
            return None
        return cast("tuple[str, Callable[[str], Prediction]] | None", model(config, instances, weights))

    def exact_order_unless(self, weighted: bool) -> str | None:
        """Why sequential requests follow no order the harness can predict here; None when they do."""
        return None

    @abstractmethod
    def load_config(self, path: Path, upstream: str | None = None, route: str | None = None) -> BalancerConfig:
        """Parses ``path``; ``upstream`` and ``route`` choose the group under test where the balancer has several."""

    @abstractmethod
    def check_installed(self) -> None:
        """Raises ToolMissingError, saying how to install it, when the balancer's binary is missing."""

    @abstractmethod
    def version(self) -> str: ...

    def make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        """The balancer for ``config`` on ``runtime``, not started yet."""
        if runtime.traits.balancer_in_cluster and not self.runs_in_cluster:
            raise SpecError(f"--runtime k8s runs the topology's nginx, not {self.name}")
        return self._make(config, run_dir, settings, runtime)

    @abstractmethod
    def _make(self, config: BalancerConfig, run_dir: Path, settings: BalancerSettings, runtime: Runtime) -> Balancer:
        """The balancer itself; the runtime may run it (in a container, in the cluster)."""
