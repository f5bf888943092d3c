"""The runtimes by name: local processes, or Docker containers."""

from __future__ import annotations

from pathlib import Path

from harness.errors import SpecError
from harness.runtimes.base import Runtime
from harness.runtimes.local import LocalProcessRuntime

RUNTIMES = ("local", "docker")
DOCKER_BASES = ("offline", "official")


def make_runtime(name: str, run_dir: Path, docker_base: str = "offline") -> Runtime:
    """The runtime that starts a run's instances; its logs and labels come from ``run_dir``."""
    if name == "local":
        return LocalProcessRuntime(run_dir / "instances")
    if name == "docker":
        from harness.runtimes.containers import DockerRuntime  # the Docker SDK only when asked for

        return DockerRuntime(run_dir, base=docker_base)
    raise SpecError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")
