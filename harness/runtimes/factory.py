"""The runtimes by name: local processes, Docker containers, or pods of a Kubernetes cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import SpecError
from harness.runtimes.base import Runtime
from harness.runtimes.local import LocalProcessRuntime

if TYPE_CHECKING:
    from harness.spec import BenchSpec

RUNTIMES = ("local", "docker", "k8s")
DOCKER_BASES = ("offline", "official")


def make_runtime(
    name: str,
    run_dir: Path,
    docker_base: str = "offline",
    algorithm: str = "round_robin",
    k8s_context: str | None = None,
    k8s_image: str = "lb-harness/runtime:latest",
) -> Runtime:
    """The runtime that starts a run's instances; its logs and labels come from ``run_dir``,
    a cluster's topology from ``algorithm``'s overlay."""
    if name == "local":
        return LocalProcessRuntime(run_dir / "instances")
    if name == "docker":
        from harness.runtimes.containers import DockerRuntime  # the Docker SDK only when asked for

        return DockerRuntime(run_dir, base=docker_base)
    if name == "k8s":
        from harness.k8s.api import connect  # the Kubernetes client only when asked for
        from harness.k8s.topology import overlay_for
        from harness.runtimes.kubernetes import KubernetesRuntime

        return KubernetesRuntime(connect(k8s_context), overlay_for(algorithm), k8s_image)
    raise SpecError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")


def check_reachable(name: str, k8s_context: str | None = None) -> None:
    """Raises, saying why, when the runtime's cluster cannot be used; before any run directory exists."""
    if name == "k8s":
        from harness.k8s.api import connect

        connect(k8s_context)


def runtime_for(spec: BenchSpec, algorithm: str, run_dir: Path) -> Runtime:
    """The runtime ``spec`` asks for, for one algorithm's run in ``run_dir``."""
    return make_runtime(spec.runtime, run_dir, spec.docker_base, algorithm, spec.k8s_context, spec.k8s_image)
