"""Instances as pods of the topology's backend Deployment, in a namespace of the run's own.

The run creates the namespace, applies the overlay's backend objects with one replica
per instance, waits until that many pods are ready and adopts each for an instance:
labels it with the instance's name, renames the server in it (so ``X-Instance`` says
``api-gateway-2``, as everywhere else in the harness) and forwards a loopback port to its
service port and one to its control port. Faults map to what Kubernetes does to pods:
SIGKILL deletes the pod at once, SIGTERM deletes it with its grace period (either way
the Deployment starts a replacement, which ``restart`` adopts under the same name), a
hang is the pod's own fault endpoint (its process is PID 1 of its container, which a
signal from inside cannot stop), and scaling changes the Deployment's replicas with
``pod-deletion-cost`` choosing which pod goes. ``close`` deletes the namespace, and the
reaper deletes it if the harness dies first.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import reaper
from harness.backends import control
from harness.errors import SpecError
from harness.k8s.api import KubeApi, Pod
from harness.k8s.port_forward import LocalForward
from harness.k8s.topology import CONTROL_PORT, INSTANCE_PORT, MANAGED_BY, Topology, fit_to_run, render_overlay
from harness.net import LOOPBACK
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance, InstanceSpec, RuntimeTraits

INSTANCE_LABEL = "lb-harness/instance"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
HANG_MS = 3_600_000  # a hung pod answers nothing for an hour, its health endpoint included
ROLLOUT_TIMEOUT = 300.0  # pulling an image into a fresh node can take minutes


@dataclass
class Adopted:
    """An instance and the pod that is it now; its forwards outlive the pod, so a replacement
    is the same instance on the same loopback address, as a restarted local process is."""

    instance: Instance
    pod: Pod
    forwards: tuple[LocalForward, LocalForward]

    def close(self) -> None:
        for forward in self.forwards:
            forward.close()


class KubernetesRuntime:
    traits = RuntimeTraits(
        # A replacement pod has another address: a balancer that resolved the old one must reload.
        addresses_change_on_restart=True,
        balancer_in_cluster=True,
        # The blackhole fills the instance's listen queue from this machine: a pod's is out of reach.
        no_blackhole_because="a pod's listen queue cannot be filled from outside the cluster",
    )

    def balancer_container(self) -> None:
        return None  # the balancer is the topology's own Deployment in the cluster

    def __init__(self, api: KubeApi, overlay: Path, image: str, namespace: str | None = None) -> None:
        self.api = api
        self.overlay = overlay
        self.image = image
        self.namespace = namespace or f"lb-harness-{secrets.token_hex(4)}"
        self._created = False
        self._deployment = ""
        self._selector: dict[str, str] = {}
        self._replicas = 0
        self._adopted: dict[str, Adopted] = {}
        self.addresses: dict[str, str] = {}  # every pod address the run used -> its instance's address

    @property
    def pids(self) -> list[int]:
        return []  # nothing runs on this machine but the forwards, threads of the harness

    def topology(self, service: str, replicas: int, nginx_conf: str = "") -> Topology:
        return fit_to_run(render_overlay(self.overlay), service, self.image, replicas, nginx_conf)

    def start(self, specs: Sequence[InstanceSpec]) -> list[Instance]:
        if not specs:
            return []
        services = {spec.service for spec in specs}
        if len(services) != 1:
            named = ", ".join(sorted(services))
            raise SpecError(f"--runtime k8s runs one backend Deployment; the config names {named}")
        wanted = self._replicas + len(specs)
        if not self._created:
            self._create(specs[0].service, wanted)
        else:
            self.api.scale(self.namespace, self._deployment, wanted)
        self._replicas = wanted
        pods = self._wait_for_unadopted(len(specs))
        return [self._adopt(spec, pod) for spec, pod in zip(specs, pods, strict=True)]

    def _create(self, service: str, replicas: int) -> None:
        topology = self.topology(service, replicas)
        deployment = next(
            m for m in topology.backends if m["kind"] == "Deployment" and m["metadata"]["name"] == service
        )
        self._deployment = service
        self._selector = dict(deployment["spec"]["selector"]["matchLabels"])
        # Registered first, so a harness killed during the create leaves nothing (a name that
        # was never created is "already gone" to the cleanup).
        reaper.watch_k8s_namespace(self.namespace, self.api.context)
        self.api.create_namespace(self.namespace, MANAGED_BY)
        self._created = True
        self.api.apply(self.namespace, topology.backends)

    def _wait_for_unadopted(self, count: int) -> list[Pod]:
        def ready() -> list[Pod] | None:
            pods = [
                pod for pod in self.api.pods(self.namespace, self._selector)
                if pod.ready and not pod.deleting and INSTANCE_LABEL not in pod.labels
            ]  # fmt: skip
            return sorted(pods, key=lambda pod: (pod.created, pod.name))[:count] if len(pods) >= count else None

        what = f"{count} ready pod(s) of Deployment {self._deployment} in namespace {self.namespace}"
        return WaitStrategy(what, timeout=ROLLOUT_TIMEOUT, interval=0.5).wait(ready)

    def _adopt(self, spec: InstanceSpec, pod: Pod) -> Instance:
        self.api.patch_pod(self.namespace, pod.name, {INSTANCE_LABEL: spec.name}, {})
        adopted = self._adopted.get(spec.name)
        if adopted is None:
            forwards = (self._forward(spec.name, INSTANCE_PORT), self._forward(spec.name, CONTROL_PORT))
            instance = Instance(spec.name, spec.service, LOOPBACK, forwards[0].port, forwards[1].port, pid=0)
            adopted = self._adopted[spec.name] = Adopted(instance, pod, forwards)
        adopted.pod = pod  # from now on the forwards reach this pod
        instance = adopted.instance
        WaitStrategy(f"control endpoint of pod {pod.name}", timeout=30.0, interval=0.2).wait(
            lambda: control.rename(instance, spec.name)
        )
        self.addresses[f"{pod.ip}:{INSTANCE_PORT}"] = instance.address
        return instance

    def _forward(self, instance_name: str, port: int) -> LocalForward:
        def connect() -> socket.socket:
            return self.api.connect_port(self.namespace, self._adopted[instance_name].pod.name, port)

        return LocalForward(connect, f"{instance_name}:{port}")

    def pod_of(self, instance_name: str) -> Pod:
        return self._adopted[instance_name].pod

    def restart(self, instance: Instance) -> Instance:
        """Adopts the pod the Deployment started in place of the deleted one."""
        (pod,) = self._wait_for_unadopted(1)
        return self._adopt(instance.same_place(), pod)

    def signal(self, instance: Instance, signum: int) -> None:
        adopted = self._adopted.get(instance.name)
        if adopted is None:
            return
        if signum in (signal.SIGKILL, signal.SIGTERM):
            grace = 0 if signum == signal.SIGKILL else 30
            self.api.delete_pod(self.namespace, adopted.pod.name, grace)
            self._wait_gone(adopted.pod.name, timeout=grace + 60.0)
        elif signum == signal.SIGSTOP:
            control.set_mode(instance, delay_ms=HANG_MS)
        elif signum == signal.SIGCONT:
            control.reset(instance)
            # A hang longer than the liveness probe's patience got the container restarted,
            # under its pod's name again: it answers as the instance from here on.
            control.rename(instance, instance.name)
        else:
            raise SpecError(f"--runtime k8s has no fault for signal {signal.Signals(signum).name}")

    def _wait_gone(self, pod_name: str, timeout: float) -> None:
        def gone() -> bool | None:
            names = {pod.name for pod in self.api.pods(self.namespace, self._selector)}
            return True if pod_name not in names else None

        WaitStrategy(f"pod {pod_name} to be deleted", timeout=timeout, interval=0.2).wait(gone)

    def stop(self, instance: Instance) -> None:
        """Scales the Deployment down by one, choosing this instance's pod to go."""
        adopted = self._adopted.pop(instance.name, None)
        if adopted is None:
            return
        adopted.close()
        present = adopted.pod.name in {pod.name for pod in self.api.pods(self.namespace, self._selector)}
        if present:  # a killed instance's pod is gone already; the replica count still drops
            self.api.patch_pod(self.namespace, adopted.pod.name, {}, {DELETION_COST: "-1000"})
        self._replicas -= 1
        self.api.scale(self.namespace, self._deployment, self._replicas)
        if present:
            self._wait_gone(adopted.pod.name, timeout=90.0)

    def close(self) -> None:
        for adopted in self._adopted.values():
            adopted.close()
        self._adopted.clear()
        if self._created:
            self._created = False
            with contextlib.suppress(Exception):  # the reaper deletes it if this could not
                self.api.delete_namespace(self.namespace)
                reaper.forget_k8s_namespace(self.namespace)

    def __enter__(self) -> KubernetesRuntime:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
