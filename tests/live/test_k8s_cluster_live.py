"""The k8s runtime on a real cluster: the topology applied in a throwaway namespace, the same
checks and scenarios as on local processes, and the namespace gone afterwards.

Runs when the kubeconfig's current context (or $HARNESS_K8S_CONTEXT) answers and the
cluster's nodes hold the harness's image ($HARNESS_K8S_IMAGE, default
``lb-harness/runtime:latest``; infra/k8s/README.md says how to load it into kind or
minikube); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bench import BenchResult
from harness.k8s.api import ClusterUnreachable, connect
from harness.pytest_plugin import verdict_report
from tests.live.fixtures import short_fail_timeout_nginx

pytestmark = pytest.mark.lb

CONTEXT = os.environ.get("HARNESS_K8S_CONTEXT") or None
IMAGE = os.environ.get("HARNESS_K8S_IMAGE", "lb-harness/runtime:latest")

try:
    API = connect(CONTEXT)
except ClusterUnreachable as unreachable:
    pytest.skip(f"no Kubernetes cluster: {unreachable}", allow_module_level=True)

Bench = Callable[..., BenchResult]


def harness_namespaces() -> list[str]:
    """Namespaces of the harness that are not on their way out."""
    listed = API.core.list_namespace(label_selector="app.kubernetes.io/managed-by=lb-harness").items
    return [n.metadata.name for n in listed if n.metadata and n.metadata.deletion_timestamp is None]


@pytest.mark.parametrize("algorithm", ["round_robin", "least_conn", "random"])
def test_the_topology_passes_its_algorithms_checks_on_the_cluster(lb_bench: Bench, algorithm: str) -> None:
    before = set(harness_namespaces())
    result = lb_bench(algorithm, runtime="k8s", k8s_context=CONTEXT, k8s_image=IMAGE, duration=10)
    assert result.passed, verdict_report(result)
    assert set(harness_namespaces()) <= before, "the run's namespace was not deleted"


def test_a_deleted_pod_is_ejected_and_its_replacement_served(lb_bench: Bench, tmp_path: Path) -> None:
    # Kubernetes replaces the pod under a new address within seconds; nginx learns it on reload.
    scenario = tmp_path / "kill.toml"
    scenario.write_text(
        'duration = 40\nwarmup = 3\n[[faults]]\nat = 8\nkind = "kill"\ninstance = 2\nrollback_after = 4\n'
    )
    result = lb_bench(
        "health_checks", config=short_fail_timeout_nginx(tmp_path), scenario=str(scenario),
        runtime="k8s", k8s_context=CONTEXT, k8s_image=IMAGE,
    )  # fmt: skip
    assert result.passed, verdict_report(result)
