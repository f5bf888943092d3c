"""The k8s runtime's own logic against a stand-in API whose pods are real local processes:
adoption under the harness's instance names, forwards, kill and replacement, hang, scale
down choosing the pod, and the namespace deleted at the end."""

from __future__ import annotations

import http.client
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends import INSTANCE_HEADER, control
from harness.k8s.topology import overlay_for
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance, InstanceSpec
from harness.runtimes.kubernetes import DELETION_COST, INSTANCE_LABEL, KubernetesRuntime
from tests.fake_cluster import FakeCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    fake = FakeCluster(tmp_path / "pods")
    yield fake
    fake.close()


@pytest.fixture
def runtime(cluster: FakeCluster) -> Iterator[KubernetesRuntime]:
    with KubernetesRuntime(cluster, overlay_for("round_robin"), "registry.example/lb-harness:1") as started:
        yield started


def specs(*numbers: int) -> list[InstanceSpec]:
    return [InstanceSpec(f"api-gateway-{n}", "api-gateway", "") for n in numbers]


def answered_by(instance: Instance, timeout: float = 5.0) -> str:
    connection = http.client.HTTPConnection(instance.host, instance.port, timeout=timeout)
    try:
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        response.read()
        return response.headers.get(INSTANCE_HEADER, "")
    finally:
        connection.close()


def test_pods_are_adopted_under_the_instance_names_and_answer_through_loopback_forwards(
    cluster: FakeCluster, runtime: KubernetesRuntime
) -> None:
    instances = runtime.start(specs(1, 2, 3))
    assert [i.name for i in instances] == ["api-gateway-1", "api-gateway-2", "api-gateway-3"]
    assert all(i.host == "127.0.0.1" for i in instances)
    assert [answered_by(i) for i in instances] == [i.name for i in instances]
    labels = sorted(pod.labels[INSTANCE_LABEL] for pod in cluster.pods_by_name.values())
    assert labels == [i.name for i in instances]
    deployment = next(m for m in cluster.applied if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3, deployment["spec"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/lb-harness:1"
    assert cluster.namespaces == [runtime.namespace]
    assert not any(m["metadata"]["name"] == "balancer" for m in cluster.applied), "the balancer is the balancer's"


def test_a_killed_pod_is_replaced_and_the_replacement_adopted_under_the_same_name(
    cluster: FakeCluster, runtime: KubernetesRuntime
) -> None:
    first, second = runtime.start(specs(1, 2))
    killed_pod = runtime.pod_of("api-gateway-2")
    runtime.signal(second, signal.SIGKILL)
    assert killed_pod.name not in cluster.pods_by_name
    with pytest.raises(OSError):
        answered_by(second, timeout=1.0)  # the forward is there, the pod is not
    restarted = runtime.restart(second)
    assert restarted == second, "the replacement is the same instance on the same loopback address"
    replacement = runtime.pod_of("api-gateway-2")
    assert replacement.name != killed_pod.name
    assert answered_by(restarted) == "api-gateway-2"
    # Both pods' addresses name the instance in the balancer's log.
    assert runtime.addresses[f"{killed_pod.ip}:3000"] == runtime.addresses[f"{replacement.ip}:3000"] == second.address
    assert answered_by(first) == "api-gateway-1"


def test_a_hang_is_the_fault_endpoint_and_its_rollback_answers_again(runtime: KubernetesRuntime) -> None:
    (instance,) = runtime.start(specs(1))
    runtime.signal(instance, signal.SIGSTOP)
    with pytest.raises(TimeoutError):
        answered_by(instance, timeout=0.5)
    runtime.signal(instance, signal.SIGCONT)
    assert control.state(instance)["mode"]["delay_ms"] == 0
    assert answered_by(instance) == "api-gateway-1"


def test_scaling_down_removes_exactly_the_stopped_instances_pod(
    cluster: FakeCluster, runtime: KubernetesRuntime
) -> None:
    _, second, _ = runtime.start(specs(1, 2, 3))
    added = runtime.start(specs(4))
    assert [i.name for i in added] == ["api-gateway-4"]
    assert cluster.deployments["api-gateway"].replicas == 4
    leaving = runtime.pod_of("api-gateway-2")
    runtime.stop(second)
    assert cluster.annotations[leaving.name][DELETION_COST] == "-1000"
    assert cluster.deployments["api-gateway"].replicas == 3
    left = sorted(pod.labels[INSTANCE_LABEL] for pod in cluster.pods_by_name.values())
    assert left == ["api-gateway-1", "api-gateway-3", "api-gateway-4"], left


def test_close_deletes_the_namespace_and_closes_the_forwards(cluster: FakeCluster, runtime: KubernetesRuntime) -> None:
    (instance,) = runtime.start(specs(1))
    runtime.close()
    assert cluster.deleted_namespaces == [runtime.namespace]
    with pytest.raises(OSError):
        answered_by(instance, timeout=1.0)
    runtime.close()  # twice is safe
    assert cluster.deleted_namespaces == [runtime.namespace]


def test_a_config_with_two_services_is_refused(runtime: KubernetesRuntime) -> None:
    from harness.errors import SpecError

    with pytest.raises(SpecError, match="one backend Deployment"):
        runtime.start([InstanceSpec("a-1", "a", ""), InstanceSpec("b-1", "b", "")])


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_pods_are_adopted_each_with_its_forwards_and_all_let_go_at_the_end(tmp_path: Path) -> None:
    """--runtime k8s at scale: 1,000 replicas of one Deployment, each pod adopted under its
    instance's name with two loopback forwards of its own (service and control), and every
    forward closed with the runtime. The pods share one instance process (``shared``): what is
    tested is the runtime's work per pod."""
    fake = FakeCluster(tmp_path / "pods", shared=True)
    before = open_descriptors()
    try:
        with KubernetesRuntime(fake, overlay_for("round_robin"), "registry.example/lb-harness:1") as runtime:
            instances = runtime.start(specs(*range(1, 1001)))
            assert [i.name for i in instances] == [f"api-gateway-{n}" for n in range(1, 1001)]
            ports = {port for i in instances for port in (i.port, i.control_port)}
            assert len(ports) == 2000, "each pod has a service and a control forward of its own"
            assert sorted(pod.labels[INSTANCE_LABEL] for pod in fake.pods_by_name.values()) == sorted(
                i.name for i in instances
            )
            assert len(set(runtime.addresses)) == 1000 and len(set(runtime.addresses.values())) == 1000
            deployment = next(m for m in fake.applied if m["kind"] == "Deployment")
            assert deployment["spec"]["replicas"] == 1000
            assert answered_by(instances[999]) != ""  # a forward reaches the pod's process
        # Closed with the runtime; gevent lets go of a socket with a blocked accept() on its next turn.
        WaitStrategy("the forwards' sockets to close", timeout=10).wait(
            lambda: True if open_descriptors() <= before + 5 else None
        )
    finally:
        fake.close()
