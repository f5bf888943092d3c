"""``harness k8s validate`` and ``lint`` (one line per problem, exit 1 when there is one),
``render`` (the objects a k8s run applies) and ``image`` (the image a cluster's nodes need)."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.health import passive_checks
from harness.balancers.nginx.in_cluster import render_in_cluster
from harness.checks.health_models import PassiveChecks
from harness.errors import SpecError
from harness.k8s.lint import lint
from harness.k8s.topology import fit_to_run, overlay_for, render_overlay
from harness.k8s.validate import SUPPORTED_VERSIONS, validate
from harness.runtimes.docker_engine import engine, ensure_runtime_image


def shipped_passive_checks() -> tuple[str, PassiveChecks]:
    """The shipped nginx health-checks config's name and passive checks, which probes are read against."""
    path = shipped_config(ALGORITHMS["health_checks"])
    return path.name, passive_checks(load_config(path))


def k8s_check(console: Console, command: str, paths: list[Path]) -> int:
    if command == "validate":
        problems = validate(paths)
        what = f"the schemas of Kubernetes {', '.join(SUPPORTED_VERSIONS)} (strict)"
    else:
        problems, mappings = lint(paths, shipped_passive_checks())
        what = "the lint checks"
        for mapping in mappings:
            console.print(f"note: {mapping}", highlight=False, soft_wrap=True)
    for problem in problems:
        console.print(f"[bold red]problem[/] {problem}", highlight=False, soft_wrap=True)
    where = ", ".join(str(path) for path in paths)
    if problems:
        console.print(f"{len(problems)} problems in {where} against {what}", highlight=False)
        return 1
    console.print(f"{where}: every manifest passes {what}", highlight=False)
    return 0


def render_topology(algorithm: str, config_path: Path | None, replicas: int, image: str) -> str:
    """``harness k8s render``: the objects ``--runtime k8s`` applies for ``algorithm``, as YAML."""
    overlay = overlay_for(algorithm)
    config = load_config(config_path or shipped_config(ALGORITHMS[algorithm]))
    if len(config.services) != 1:
        raise SpecError(f"the topology balances one service; {config.path} names {', '.join(config.services)}")
    topology = fit_to_run(render_overlay(overlay), config.services[0], image, replicas, render_in_cluster(config))
    return yaml.safe_dump_all([*topology.backends, *topology.balancer], sort_keys=False)


def build_image(tag: str, base: str) -> str:
    """``harness k8s image``: the runtime image built (or found) on the Docker engine and tagged ``tag``."""
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version or not tag.isprintable() or " " in tag:
        raise SpecError(f"--tag must be REPOSITORY:TAG, got {tag!r}")
    client = engine()
    built = ensure_runtime_image(client, base)
    client.images.get(built).tag(repository, version)
    return built
