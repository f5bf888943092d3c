"""The topology's pods as the cluster would run them, on the real Docker engine: the
rendered Deployments' commands in the harness's image, two containers sharing one network
namespace that has only a loopback interface (as a pod's containers share one), the
ConfigMap mounted read-only and the state directory empty, as on a node.

What a node adds and this does not: the Service's DNS (here ``api-gateway`` is written
into the balancer's hosts file) and the kubelet's ``$(POD_NAME)`` expansion (done here
from the manifest's own env). Skipped with the reason when no engine answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.in_cluster import InClusterNginx, render_in_cluster
from harness.errors import ToolMissingError
from harness.k8s.api import Pod
from harness.k8s.topology import CONFIG_DIR, RUNNING_CONFIG, STATE_DIR, fit_to_run, overlay_for, render_overlay
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance
from harness.runtimes.containers import RUN_LABEL, run_label
from harness.runtimes.docker_engine import LABEL, engine, ensure_runtime_image

pytestmark = pytest.mark.lb

try:
    CLIENT = engine()
except ToolMissingError as missing:
    pytest.skip(f"no Docker engine: {missing}", allow_module_level=True)

POD_NAME = "api-gateway-5d8f7-x2x9q"
LEAST_CONN = shipped_config(ALGORITHMS["least_conn"])


class OnePod:
    """What the in-cluster nginx asks of its runtime, for one pod that is a container here:
    ``execute`` is ``docker exec``, and the instance's pod address is the shared loopback."""

    namespace = "local"
    addresses = {"127.0.0.1:3000": "127.0.0.1:41001"}  # noqa: RUF012

    def __init__(self, container: Any) -> None:
        self.container = container
        self.api = self

    def execute(self, namespace: str, pod: str, argv: Sequence[str]) -> str:
        result = self.container.exec_run(list(argv), demux=True)
        stdout, stderr = (part.decode() if part else "" for part in result.output)
        assert result.exit_code == 0, (argv, stdout, stderr)
        return stdout

    def pod_of(self, name: str) -> Pod:
        return Pod("api-gateway-pod", "127.0.0.1", True, False)


def container_of(manifests: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = next(m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == name)
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[dict[str, Any]]:
    image = ensure_runtime_image(CLIENT)
    config = load_config(LEAST_CONN)
    topology = fit_to_run(render_overlay(overlay_for("least_conn")), "api-gateway", image, 1, render_in_cluster(config))
    backend, balancer = container_of(topology.backends, "api-gateway"), container_of(topology.balancer, "balancer")
    config_dir = tmp_path / "configmap"
    config_dir.mkdir()
    config_map = next(m for m in topology.balancer if m["kind"] == "ConfigMap")
    for key, text in config_map["data"].items():
        (config_dir / key).write_text(text)
    labels = {LABEL: "k8s-pod-check", RUN_LABEL: run_label(tmp_path)}
    started: dict[str, Any] = {}
    try:
        assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in backend["env"]
        command = [POD_NAME if part == "$(POD_NAME)" else part for part in backend["command"]]
        # The pod's network namespace, hosts file included, belongs to its first container.
        started["backend"] = CLIENT.containers.run(
            image, command, network_mode="none", labels=labels, detach=True, environment={"POD_NAME": POD_NAME},
            extra_hosts={"api-gateway": "127.0.0.1"},
        )  # fmt: skip
        started["balancer"] = CLIENT.containers.run(
            image, balancer["command"], network_mode=f"container:{started['backend'].id}", labels=labels,
            detach=True, volumes={str(config_dir): {"bind": CONFIG_DIR, "mode": "ro"}}, tmpfs={STATE_DIR: ""},
        )  # fmt: skip
        yield started
    finally:
        for container in started.values():
            container.remove(force=True)


def get(container: Any, path: str) -> tuple[int, str]:
    """A request from inside the pod's network namespace, with the image's own Python."""
    script = (
        f"import urllib.request as u; r = u.urlopen('http://127.0.0.1:80{path}', timeout=5); "
        "print(r.status, r.headers['X-Instance'])"
    )
    result = container.exec_run(["python3", "-c", script])
    if result.exit_code != 0:
        raise OSError(result.output.decode(errors="replace").strip().splitlines()[-1])
    status, instance = result.output.decode().split()
    return int(status), instance


def test_the_rendered_pods_serve_through_nginx_and_its_log_reads_back(pod: dict[str, Any], tmp_path: Path) -> None:
    balancer = pod["balancer"]
    status, instance = WaitStrategy("nginx in the balancer container", timeout=30.0, interval=0.2).wait(
        lambda: get(balancer, "/api/health")
    )
    assert (status, instance) == (200, POD_NAME), "the backend answers under its pod's name"
    for _ in range(4):
        assert get(balancer, "/api/count") == (200, POD_NAME)
    # The balancer's own commands, through the same code the k8s runtime runs them with: a
    # reload writes the config for the pods into the state directory, checks it, signals nginx.
    nginx = InClusterNginx(load_config(LEAST_CONN), tmp_path, OnePod(balancer))  # type: ignore[arg-type]
    nginx.pod = "balancer-pod"
    nginx.reload_in_pod([Instance("api-gateway-1", "api-gateway", "127.0.0.1", 41001, 41002, 0)])
    running = balancer.exec_run(["cat", RUNNING_CONFIG]).output.decode()
    assert "server 127.0.0.1:3000;" in running and "least_conn;" in running, running
    assert get(balancer, "/api/health") == (200, POD_NAME), "nginx answers after the reload"
    lines = nginx.fetch_access_log().splitlines()
    assert len(lines) >= 6, lines
    assert all("127.0.0.1:41001" in line and "127.0.0.1:3000" not in line for line in lines[-5:]), lines[-5:]
    printed = balancer.exec_run(["nginx", "-v"]).output.decode().strip()  # on stderr, merged here
    assert nginx.version() == printed.removeprefix("nginx version: ") and printed.startswith("nginx version: nginx/")
