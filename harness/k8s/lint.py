"""``harness k8s lint``: what the schemas cannot see, across objects and against the app.

- a Service's selector matches the pod labels of a Deployment, and its targetPort is one
  of those pods' container ports (by number or name);
- a NodePort lies in 30000-32767;
- an Ingress points at a Service that exists, on one of its ports;
- every HTTP probe asks a path the instance serves, on a port its container has;
- a startup probe gives the instance time to start (periodSeconds x failureThreshold
  against the start time measured on this machine, with room for a slow node);
- kustomizations name files that exist;
- and, as numbers rather than problems, how long a failing readiness probe takes to
  remove a pod from a Service's endpoints next to how long the nginx configs' passive
  checks take to stop sending to a failing instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.checks.health_models import PassiveChecks
from harness.k8s.manifests import K8sObject, is_kustomization, manifest_files, read_objects
from harness.k8s.validate import Problem

# What the instance serves (harness.backends.app) on its service port.
INSTANCE_PATHS = frozenset({"/api/health", "/api/count", "/api/cpu-bound", "/api/slow"})
# An instance listens 0.3 s after its process starts on this machine (the bring-up
# benchmark), about 1 s in a container (the Docker runtime); a startup probe should allow
# several times that on a busy node.
STARTUP_NEEDED_S = 5.0
NODE_PORTS = range(30000, 32768)


@dataclass(frozen=True)
class Mapping:
    """A readiness probe's removal time next to a balancer config's passive checks."""

    where: str
    readiness_removal_s: float  # periodSeconds x failureThreshold (+ timeoutSeconds for the last)
    config: str
    passive_out_after: str

    def __str__(self) -> str:
        return (
            f"{self.where}: a failing pod leaves the Service's endpoints after about "
            f"{self.readiness_removal_s:g} s of readiness probes; {self.config}: {self.passive_out_after}"
        )


def _pods(objects: list[K8sObject]) -> list[tuple[K8sObject, dict[str, Any], list[dict[str, Any]]]]:
    """(workload, pod labels, containers) of every Deployment, StatefulSet and DaemonSet."""
    found = []
    for item in objects:
        if item.kind in {"Deployment", "StatefulSet", "DaemonSet"}:
            template = (item.body.get("spec") or {}).get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            containers = (template.get("spec") or {}).get("containers") or []
            found.append((item, labels, containers))
    return found


def _ports(containers: list[dict[str, Any]]) -> tuple[set[int], set[str]]:
    numbers, names = set(), set()
    for container in containers:
        for port in container.get("ports") or []:
            numbers.add(int(port.get("containerPort", 0)))
            if port.get("name"):
                names.add(str(port["name"]))
    return numbers, names


def _services(objects: list[K8sObject], pods: list[Any]) -> list[Problem]:
    problems = []
    for item in objects:
        if item.kind != "Service":
            continue
        spec = item.body.get("spec") or {}
        selector = spec.get("selector") or {}
        matched = [p for p in pods if selector and all(p[1].get(k) == v for k, v in selector.items())]
        if selector and not matched:
            problems.append(Problem(item.label, "spec.selector", f"{selector} matches the pods of no workload here"))
        for index, port in enumerate(spec.get("ports") or []):
            field = f"spec.ports.{index}"
            if spec.get("type") == "NodePort" and port.get("nodePort") and port["nodePort"] not in NODE_PORTS:
                problems.append(Problem(item.label, f"{field}.nodePort", f"{port['nodePort']} is outside 30000-32767"))
            target = port.get("targetPort", port.get("port"))
            for workload, _, containers in matched:
                numbers, names = _ports(containers)
                if (isinstance(target, int) and target not in numbers) or (
                    isinstance(target, str) and target not in names
                ):
                    problems.append(
                        Problem(
                            item.label,
                            f"{field}.targetPort",
                            f"{target!r} is no container port of {workload.kind}/{workload.name} "
                            f"(ports {sorted(numbers)}, names {sorted(names)})",
                        )
                    )
    return problems


def _ingresses(objects: list[K8sObject]) -> list[Problem]:
    services = {item.name: item for item in objects if item.kind == "Service"}
    problems = []
    for item in objects:
        if item.kind != "Ingress":
            continue
        for r, rule in enumerate((item.body.get("spec") or {}).get("rules") or []):
            for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
                backend = (path.get("backend") or {}).get("service") or {}
                field = f"spec.rules.{r}.http.paths.{p}.backend.service"
                service = services.get(str(backend.get("name")))
                if service is None:
                    problems.append(Problem(item.label, f"{field}.name", f"no Service {backend.get('name')!r} here"))
                    continue
                port = backend.get("port") or {}
                ports = (service.body.get("spec") or {}).get("ports") or []
                if "number" in port and port["number"] not in {p.get("port") for p in ports}:
                    problems.append(
                        Problem(item.label, f"{field}.port", f"Service {service.name} has no port {port['number']}")
                    )
                if "name" in port and port["name"] not in {p.get("name") for p in ports}:
                    problems.append(
                        Problem(
                            item.label, f"{field}.port", f"Service {service.name} has no port named {port['name']!r}"
                        )
                    )
    return problems


def _probes(pods: list[Any]) -> tuple[list[Problem], list[tuple[str, float]]]:
    problems: list[Problem] = []
    readiness: list[tuple[str, float]] = []
    for workload, _, containers in pods:
        for c, container in enumerate(containers):
            numbers, names = _ports([container])
            serves_instance = "harness.backends.serve" in " ".join(container.get("command") or [])
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(kind)
                if not probe:
                    continue
                field = f"spec.template.spec.containers.{c}.{kind}"
                check = probe.get("httpGet") or probe.get("tcpSocket") or {}
                port = check.get("port")
                if (isinstance(port, int) and port not in numbers) or (isinstance(port, str) and port not in names):
                    problems.append(Problem(workload.label, f"{field}.port", f"{port!r} is no port of the container"))
                path = (probe.get("httpGet") or {}).get("path")
                if serves_instance and path is not None and path not in INSTANCE_PATHS:
                    problems.append(
                        Problem(
                            workload.label,
                            f"{field}.httpGet.path",
                            f"the instance serves no {path} (it has {sorted(INSTANCE_PATHS)})",
                        )
                    )
                period, failures = probe.get("periodSeconds", 10), probe.get("failureThreshold", 3)
                if kind == "startupProbe" and serves_instance and period * failures < STARTUP_NEEDED_S:
                    problems.append(
                        Problem(
                            workload.label,
                            field,
                            f"periodSeconds x failureThreshold = {period * failures:g} s, less than the "
                            f"{STARTUP_NEEDED_S:g} s an instance may need to start on a busy node",
                        )
                    )
                if kind == "readinessProbe" and serves_instance:
                    readiness.append((workload.label, period * failures + probe.get("timeoutSeconds", 1)))
    return problems, readiness


def _kustomizations(paths: Iterable[Path]) -> list[Problem]:
    problems = []
    for path in manifest_files(paths):
        if not is_kustomization(path):
            continue
        body = yaml.safe_load(path.read_text()) or {}
        named = list(body.get("resources") or [])
        for generator in body.get("configMapGenerator") or []:
            named += [entry.split("=", 1)[-1] for entry in generator.get("files") or []]
        for entry in named:
            if not (path.parent / entry).exists():
                problems.append(Problem(str(path), "", f"names {entry}, which does not exist"))
    return problems


def mapping(readiness: list[tuple[str, float]], against: tuple[str, PassiveChecks]) -> list[Mapping]:
    """Readiness removal times next to a balancer config's passive checks (its name, its settings)."""
    config_name, checks = against
    passive = (
        f"out after max_fails={checks.max_fails} failed requests (as fast as traffic brings them), "
        f"for fail_timeout={checks.fail_timeout:g} s"
    )
    return [Mapping(where, seconds, config_name, passive) for where, seconds in readiness]


def object_sets(path: Path) -> list[tuple[str, list[K8sObject]]]:
    """The groups of objects that are applied together, so that names resolve among them:
    a kustomization with its resources; else the manifests directly in a directory (its
    subdirectories are groups of their own); else one file."""
    if path.is_file():
        return [(str(path), read_objects([path]))]
    kustomization = next(
        (path / name for name in ("kustomization.yaml", "kustomization.yml") if (path / name).exists()), None
    )
    if kustomization is not None:
        return [(str(path), _kustomized(path))]
    files = sorted(p for p in path.glob("*") if p.suffix in {".yaml", ".yml"})
    sets = [(str(path), read_objects(files))] if files else []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        sets += object_sets(child)
    return sets


def _kustomized(directory: Path) -> list[K8sObject]:
    body = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    objects: list[K8sObject] = []
    for entry in body.get("resources") or []:
        target = directory / entry
        if target.is_dir():
            objects += _kustomized(target)
        elif target.is_file():
            objects += read_objects([target])
    return objects


def lint(paths: Iterable[Path], against: tuple[str, PassiveChecks]) -> tuple[list[Problem], list[Mapping]]:
    """Problems across the objects of ``paths``, and each readiness probe's removal time next to
    ``against``: the name of a balancer config and its passive checks (the shipped nginx one's from the CLI)."""
    problems: list[Problem] = []
    readiness: list[tuple[str, float]] = []
    paths = list(paths)
    for _, objects in [group for path in paths for group in object_sets(path)]:
        pods = _pods(objects)
        probe_problems, found = _probes(pods)
        problems += _services(objects, pods) + _ingresses(objects) + probe_problems
        readiness += [item for item in found if item not in readiness]
    problems += _kustomizations(paths)
    unique = list(dict.fromkeys(problems))  # a file in several groups is reported once
    return unique, mapping(readiness, against)
