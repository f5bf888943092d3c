"""The overlays rendered for a run: the objects kustomize would give, fitted to the run, and
still valid against the official schemas; the in-cluster nginx's config and access log."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.in_cluster import InClusterNginx, render_in_cluster
from harness.errors import SpecError
from harness.k8s.topology import (
    BALANCER_CONFIG,
    RUNNING_CONFIG,
    fit_to_run,
    k8s_algorithms,
    overlay_for,
    overlays_dir,
    render_overlay,
)
from harness.k8s.validate import validate_body
from harness.runtimes.base import InstanceSpec
from harness.runtimes.kubernetes import KubernetesRuntime
from tests.fake_cluster import FakeCluster

INFRA_NGINX = overlays_dir().parents[2] / "nginx"


@pytest.mark.parametrize("algorithm", ["round_robin", "least_conn", "ip_hash", "health_checks", "random"])
def test_each_overlay_renders_the_topology_with_its_algorithms_config(algorithm: str) -> None:
    objects = render_overlay(overlay_for(algorithm))
    kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in objects)
    assert kinds == [
        "ConfigMap/balancer-config", "Deployment/api-gateway", "Deployment/balancer",
        "Ingress/balancer", "Service/api-gateway", "Service/balancer",
    ]  # fmt: skip
    config_map = next(m for m in objects if m["kind"] == "ConfigMap")
    expected = (INFRA_NGINX / f"nginx-{algorithm.replace('_', '-')}.conf").read_text()
    assert config_map["data"] == {"nginx.conf": expected}


def test_fitting_sets_image_replicas_pod_names_and_the_rendered_config() -> None:
    topology = fit_to_run(render_overlay(overlay_for("least_conn")), "api-gateway", "reg/img:7", 5, "events {}\n")
    deployment = next(m for m in topology.backends if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 5
    assert container["image"] == "reg/img:7"
    assert container["command"][container["command"].index("--name") + 1] == "$(POD_NAME)"
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    config_map = next(m for m in topology.balancer if m["metadata"]["name"] == BALANCER_CONFIG)
    assert config_map["data"] == {"nginx.conf": "events {}\n"}
    balancer = next(m for m in topology.balancer if m["kind"] == "Deployment")
    assert "daemon off" not in " ".join(balancer["spec"]["template"]["spec"]["containers"][0]["command"])
    for manifest in topology.backends + topology.balancer:
        assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "lb-harness"
        problems = validate_body(manifest, f"{manifest['kind']}/{manifest['metadata']['name']}")
        assert not problems, "\n".join(map(str, problems))


def test_weighted_has_no_overlay_and_all_leaves_out_ip_hash() -> None:
    with pytest.raises(SpecError, match="no Kubernetes overlay for weighted"):
        overlay_for("weighted")
    assert k8s_algorithms() == ("health_checks", "least_conn", "random", "round_robin")


def test_a_kustomization_feature_the_harness_does_not_render_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatches:\n  - path: p.yaml\n")
    with pytest.raises(SpecError, match=r"not \['patches'\]"):
        render_overlay(tmp_path)


def test_the_in_cluster_config_lists_the_pods_in_instance_order_and_logs_in_the_pods_state_dir(
    tmp_path: Path,
) -> None:
    config = load_config(INFRA_NGINX / "nginx-health-checks.conf")
    assert "server api-gateway:3000 max_fails=3 fail_timeout=30s;" in render_in_cluster(config), "by Service name"
    fake = FakeCluster(tmp_path / "pods")
    try:
        runtime = KubernetesRuntime(fake, overlay_for("health_checks"), "img")
        instances = runtime.start([InstanceSpec(f"api-gateway-{n}", "api-gateway", "") for n in (1, 2, 3)])
        text = InClusterNginx(config, tmp_path, runtime, zone=True).render_config(instances)
        pods = [runtime.pod_of(i.name).ip for i in instances]
        runtime.close()
    finally:
        fake.close()
    servers = [line.split()[1] for line in text.splitlines() if line.strip().startswith("server 10.")]
    assert servers == [f"{ip}:3000" for ip in pods], text
    assert "zone api_gateway_zone 64k;" in text and "max_fails=3 fail_timeout=30s" in text
    assert "listen 80;" in text and "daemon off;" in text
    assert "access_log /var/run/lb-harness/access.log" in text


def test_the_access_log_names_the_instances_not_the_pods(tmp_path: Path) -> None:
    config = load_config(INFRA_NGINX / "nginx-round-robin.conf")
    fake = FakeCluster(tmp_path / "pods")
    runtime = KubernetesRuntime(fake, overlay_for("round_robin"), "img")
    runtime.addresses = {"10.244.0.7:3000": "127.0.0.1:41001", "10.244.0.9:3000": "127.0.0.1:41002"}
    nginx = InClusterNginx(config, tmp_path, runtime)
    nginx.pod = "balancer-abc"
    fake.exec_answers = {
        "wc": "123 /var/run/lb-harness/access.log",
        "cat": "1.0\t10.244.0.7:3000, 10.244.0.9:3000\t502, 200\n2.0\t10.244.0.9:3000\t200\n",
    }
    text = nginx.fetch_access_log()
    assert text == "1.0\t127.0.0.1:41001, 127.0.0.1:41002\t502, 200\n2.0\t127.0.0.1:41002\t200\n"
    assert fake.executed[0] == ("balancer-abc", ("nginx", "-c", RUNNING_CONFIG, "-s", "reopen"))


def test_k8s_render_prints_valid_objects_for_a_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    command = [sys.executable, "-m", "harness.cli.main", "k8s", "render", "--algo", "random", "--backends", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    for manifest in objects:
        problems = validate_body(manifest, f"{manifest['kind']}/{manifest['metadata']['name']}")
        assert not problems, "\n".join(map(str, problems))
    config = next(m for m in objects if m["kind"] == "ConfigMap")["data"]["nginx.conf"]
    assert "random;" in config and "server api-gateway:3000;" in config, config
    assert next(m for m in objects if m["kind"] == "Deployment")["spec"]["replicas"] == 4
    refused = subprocess.run([*command[:-4], "--algo", "weighted"], capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "no Kubernetes overlay for weighted" in refused.stderr
