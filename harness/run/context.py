"""What every part of one algorithm's run reads: the plan, the config, its workers and weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.algorithms import Algorithm
from harness.balancers.base import BalancerConfig, ServerClaims
from harness.balancers.kind import BalancerKind
from harness.balancers.registry import kind_of
from harness.expectations import expected_shares, peer_weights
from harness.plan import Plan, PlannedRun
from harness.results.store import Journal
from harness.run.reporter import Reporter
from harness.runtimes.base import Instance
from harness.scenarios.model import Scenario
from harness.spec import BenchSpec


@dataclass
class RunContext:
    plan: Plan
    planned: PlannedRun
    run_dir: Path
    reporter: Reporter
    journal: Journal
    weights_by_instance: dict[str, int] | None = None  # --weights by instance, once the cluster is planned

    @property
    def spec(self) -> BenchSpec:
        return self.plan.spec

    @property
    def algorithm(self) -> Algorithm:
        return self.planned.algorithm

    @property
    def config(self) -> BalancerConfig:
        return self.planned.config

    @property
    def kind(self) -> BalancerKind:
        return kind_of(self.config.balancer)

    @property
    def scenario(self) -> Scenario | None:
        return self.plan.scenario

    @property
    def server_claims(self) -> ServerClaims:
        """What the servers must do: from --claims-from's config when given, else the running config's."""
        return self.planned.server_claims or self.config.server_claims()

    @property
    def workers(self) -> int:
        return self.config.effective_workers(self.spec.workers)

    @property
    def zone(self) -> bool:
        """A zone given by --zone or already in the user's upstream: workers then share counts."""
        return self.spec.zone or self.config.shares_counts()

    def phase(self, text: str) -> None:
        self.reporter.phase(self.algorithm.name, text)

    def peer_weights(self, instances: list[Instance]) -> list[tuple[str, int]]:
        return peer_weights(self.config, instances, self.weights_by_instance)

    def expected_shares(self, instances: list[Instance]) -> dict[str, float] | None:
        return expected_shares(self.algorithm, self.config, instances, self.weights_by_instance)
