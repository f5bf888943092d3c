"""A stand-in for a Kubernetes API whose pods are real local backend processes.

It keeps what the k8s runtime relies on: a Deployment's replicas are kept (a deleted pod
is replaced under a new name), scaling down removes the pods of lowest
``pod-deletion-cost`` first, labels select pods, and a port-forward reaches the pod's
service or control port. Everything else (scheduling, images, probes) is out of scope.

``shared=True`` backs every pod with one instance process: a thousand pods cost one process,
for what the runtime does per pod (adoption, forwards, names), not what an instance does.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.k8s.api import Pod
from harness.k8s.topology import CONTROL_PORT, INSTANCE_PORT
from harness.runtimes.base import Instance, InstanceSpec
from harness.runtimes.kubernetes import DELETION_COST
from harness.runtimes.local import LocalProcessRuntime, instance_host


@dataclass
class FakeDeployment:
    name: str
    labels: dict[str, str]
    replicas: int


@dataclass
class FakeCluster:
    log_dir: Path
    context: str = "fake"
    namespaces: list[str] = field(default_factory=list)
    deleted_namespaces: list[str] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[str, FakeDeployment] = field(default_factory=dict)
    pods_by_name: dict[str, Pod] = field(default_factory=dict)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, Instance] = field(default_factory=dict)
    executed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    exec_answers: dict[str, str] = field(default_factory=dict)  # first word of a command -> its output
    shared: bool = False  # every pod served by one instance process
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.runtime = LocalProcessRuntime(self.log_dir)

    def close(self) -> None:
        self.runtime.close()

    # The KubeApi protocol.
    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        self.namespaces.append(name)

    def delete_namespace(self, name: str) -> None:
        self.deleted_namespaces.append(name)
        for pod in list(self.pods_by_name):
            self._remove(pod)
        self.deployments.clear()

    def apply(self, namespace: str, manifests: Sequence[Mapping[str, Any]]) -> None:
        for manifest in manifests:
            self.applied.append(dict(manifest))
            if manifest["kind"] == "Deployment" and manifest["metadata"]["name"] != "balancer":
                spec = manifest["spec"]
                deployment = FakeDeployment(
                    manifest["metadata"]["name"], dict(spec["template"]["metadata"]["labels"]), spec["replicas"]
                )
                self.deployments[deployment.name] = deployment
                self._reconcile(deployment)

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[Pod]:
        return [pod for pod in self.pods_by_name.values() if all(pod.labels.get(k) == v for k, v in selector.items())]

    def delete_pod(self, namespace: str, name: str, grace_seconds: int) -> None:
        pod = self.pods_by_name.get(name)
        if pod is None:
            return
        self._remove(name)
        for deployment in self.deployments.values():
            if all(pod.labels.get(k) == v for k, v in deployment.labels.items()):
                self._reconcile(deployment)

    def patch_pod(self, namespace: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> None:
        pod = self.pods_by_name[name]
        self.pods_by_name[name] = replace(pod, labels={**pod.labels, **labels})
        self.annotations.setdefault(name, {}).update(annotations)

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.deployments[deployment].replicas = replicas
        self._reconcile(self.deployments[deployment])

    def execute(self, namespace: str, pod: str, argv: Sequence[str]) -> str:
        self.executed.append((pod, tuple(argv)))
        return self.exec_answers.get(argv[0], "")

    def connect_port(self, namespace: str, pod: str, port: int) -> socket.socket:
        instance = self.processes[pod]
        target = {INSTANCE_PORT: instance.port, CONTROL_PORT: instance.control_port}[port]
        return socket.create_connection((instance.host, target), timeout=5)

    # The Deployment controller, reduced to keeping the count.
    def _reconcile(self, deployment: FakeDeployment) -> None:
        pods = self.pods(namespace="", selector=deployment.labels)
        for _ in range(deployment.replicas - len(pods)):
            serial = next(self._serial)
            name = f"{deployment.name}-pod{serial}"
            self.processes[name] = self._instance_for(name, deployment.name, serial)
            ip = f"10.244.{serial // 250}.{serial % 250 + 1}"
            self.pods_by_name[name] = Pod(name, ip, True, False, dict(deployment.labels), serial)
        if len(pods) > deployment.replicas:
            cost = {pod.name: int(self.annotations.get(pod.name, {}).get(DELETION_COST, "0")) for pod in pods}
            for pod in sorted(pods, key=lambda p: (cost[p.name], -p.created))[: len(pods) - deployment.replicas]:
                self._remove(pod.name)

    def _instance_for(self, name: str, service: str, serial: int) -> Instance:
        if self.shared and self.processes:
            return next(iter(self.processes.values()))
        (instance,) = self.runtime.start([InstanceSpec(name, service, instance_host(serial % 250))])
        return instance

    def _remove(self, name: str) -> None:
        self.pods_by_name.pop(name)
        instance = self.processes.pop(name)
        if instance not in self.processes.values():
            self.runtime.stop(instance)
