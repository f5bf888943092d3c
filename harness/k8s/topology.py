"""The harness's topology as Kubernetes objects for one run: an overlay, rendered and fitted.

The overlays under ``infra/k8s/topology/overlays`` stay the one description of the
topology: this module reads them the way kustomize does for what they use (``resources``,
followed into directories, and ``configMapGenerator`` with ``files``), without the name
hash kustomize adds to a generated ConfigMap (a run's namespace is new each time, so no
rollout has to notice a changed config). Anything else in a kustomization is refused
rather than ignored.

Fitting to a run sets the image, the replica count, the balancer's config (rendered by
the harness, with its access log format) and each pod's own name as its instance name
through the downward API, so a response says which pod served it from the first request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError
from harness.infra import infra_path

BALANCER = "balancer"  # the Deployment, Service and Ingress of the balancer
BALANCER_CONFIG = "balancer-config"  # the ConfigMap holding its nginx.conf
CONFIG_DIR = "/etc/lb-harness"  # where the balancer's pod mounts the ConfigMap
STATE_DIR = "/var/run/lb-harness"  # an emptyDir for nginx's running config, pid, error and access logs
RUNNING_CONFIG = f"{STATE_DIR}/nginx.conf"  # the ConfigMap's copy, which a reload may replace
INSTANCE_PORT = 3000  # the backend container's service port (the Deployment's containerPort `http`)
CONTROL_PORT = 3100  # and its control port (`control`)
BALANCER_PORT = 80
MANAGED_BY = {"app.kubernetes.io/managed-by": "lb-harness"}
_KNOWN_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator"}

Manifest = dict[str, Any]


@dataclass
class Topology:
    """A run's objects: the backends' (applied first) and the balancer's (once they are ready)."""

    backend_deployment: str
    backends: list[Manifest] = field(default_factory=list)
    balancer: list[Manifest] = field(default_factory=list)


def overlays_dir() -> Path:
    """The overlays, one folder per algorithm: the user's whole tree when they have one, since an
    overlay's relative paths (``../../base``, the nginx configs) only hold inside one tree."""
    return infra_path("k8s", "topology", "overlays")


def overlay_for(algorithm: str) -> Path:
    """The overlay directory of ``algorithm`` (``ip_hash`` -> ``overlays/ip-hash``)."""
    overlays = overlays_dir()
    directory = overlays / algorithm.replace("_", "-")
    if not (directory / "kustomization.yaml").is_file():
        shipped = ", ".join(sorted(p.name.replace("-", "_") for p in overlays.iterdir() if p.is_dir()))
        raise SpecError(
            f"no Kubernetes overlay for {algorithm}: --runtime k8s runs {shipped} "
            "(weighted needs a service per weight, which the topology does not have)"
        )
    return directory


def k8s_algorithms() -> tuple[str, ...]:
    """What ``--runtime k8s --algo all`` runs: every overlay but ip_hash, which a port-forward
    cannot show (every client reaches nginx from one address)."""
    names = sorted(p.name.replace("-", "_") for p in overlays_dir().iterdir() if (p / "kustomization.yaml").is_file())
    return tuple(name for name in names if name != "ip_hash")


def render_overlay(directory: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize`` would print for ``directory``, without name hashes."""
    path = directory / "kustomization.yaml"
    try:
        kustomization = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    unknown = set(kustomization) - _KNOWN_KEYS
    if unknown:
        raise SpecError(f"{path}: the harness renders resources and configMapGenerator only, not {sorted(unknown)}")
    objects: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        target = (directory / resource).resolve()
        objects += render_overlay(target) if target.is_dir() else _documents(target)
    objects += [_config_map(directory, generator) for generator in kustomization.get("configMapGenerator", [])]
    return objects


def _documents(path: Path) -> list[Manifest]:
    try:
        return [document for document in yaml.safe_load_all(path.read_text()) if isinstance(document, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc


def _config_map(directory: Path, generator: Manifest) -> Manifest:
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, sep, file = str(entry).partition("=")
        if not sep:
            key, file = Path(entry).name, entry
        try:
            data[key] = (directory / file).read_text()
        except OSError as exc:
            raise SpecError(f"{directory / 'kustomization.yaml'}: configMapGenerator file {file}: {exc}") from exc
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}


def fit_to_run(objects: Iterable[Manifest], service: str, image: str, replicas: int, nginx_conf: str) -> Topology:
    """The overlay's objects made into a run: ``service`` is the backends' Deployment."""
    topology = Topology(backend_deployment=service)
    for original in objects:
        manifest = copy.deepcopy(original)
        metadata = manifest.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **MANAGED_BY}
        kind, name = manifest.get("kind"), metadata.get("name")
        if kind == "Deployment":
            _set_image(manifest, image)
        if kind == "Deployment" and name == service:
            manifest["spec"]["replicas"] = replicas
            _name_instances_after_pods(manifest)
        if kind == "Deployment" and name == BALANCER:
            _run_rendered_config(manifest)
        if kind == "ConfigMap" and name == BALANCER_CONFIG:
            manifest["data"] = {"nginx.conf": nginx_conf}
        (topology.balancer if name in {BALANCER, BALANCER_CONFIG} else topology.backends).append(manifest)
    if not any(m["kind"] == "Deployment" and m["metadata"]["name"] == service for m in topology.backends):
        raise SpecError(f"the topology has no Deployment named {service!r}, the service the config balances")
    return topology


def _containers(deployment: Manifest) -> list[Manifest]:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def _set_image(deployment: Manifest, image: str) -> None:
    for container in _containers(deployment):
        if str(container.get("image", "")).startswith("lb-harness/"):
            container["image"] = image


def _name_instances_after_pods(deployment: Manifest) -> None:
    """``--name $(POD_NAME)``: Kubernetes expands the variable from the pod's own name."""
    for container in _containers(deployment):
        command = container.get("command") or []
        if "--name" in command:
            command[command.index("--name") + 1] = "$(POD_NAME)"
            env = [e for e in container.get("env", []) if e.get("name") != "POD_NAME"]
            env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
            container["env"] = env


def _run_rendered_config(deployment: Manifest) -> None:
    """nginx runs a copy of the ConfigMap's config in its state directory, where the harness
    can replace it before a reload (a ConfigMap's mount changes only after a minute or so).
    The rendered config sets daemon, pid and logs itself: ``-g "daemon off;"`` would repeat
    a directive. nginx creates its temp paths' last directory only: their parent comes first."""
    pod = deployment["spec"]["template"]["spec"]
    for container in pod["containers"]:
        start = (
            f"mkdir -p {STATE_DIR}/temp && cp {CONFIG_DIR}/nginx.conf {RUNNING_CONFIG} "
            f"&& exec nginx -c {RUNNING_CONFIG}"
        )
        container["command"] = ["sh", "-c", start]
        mounts = [m for m in container.get("volumeMounts", []) if m.get("name") != "state"]
        container["volumeMounts"] = [*mounts, {"name": "state", "mountPath": STATE_DIR}]
    volumes = [v for v in pod.get("volumes", []) if v.get("name") != "state"]
    pod["volumes"] = [*volumes, {"name": "state", "emptyDir": {}}]
