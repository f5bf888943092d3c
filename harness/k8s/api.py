"""The few Kubernetes operations a run needs, over the official Python client.

:class:`KubeApi` is the protocol the k8s runtime is written against (a fake one backs its
unit tests); :class:`ClusterApi` is the real one, for the cluster of a kubeconfig context.
``connect`` says in one line why no cluster can be used: no kubeconfig, an unknown
context, or an API server that does not answer.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import BadInputError, HarnessError


class ClusterUnreachable(BadInputError):
    """No Kubernetes cluster to run on; the message says why."""


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    ready: bool
    deleting: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0  # seconds since the epoch, to adopt pods in the order they came


class KubeApi(Protocol):
    context: str

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None: ...

    def delete_namespace(self, name: str) -> None:
        """Starts deleting the namespace and everything in it; no error when it is gone."""
        ...

    def apply(self, namespace: str, manifests: Sequence[Mapping[str, Any]]) -> None: ...

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[Pod]: ...

    def delete_pod(self, namespace: str, name: str, grace_seconds: int) -> None: ...

    def patch_pod(
        self, namespace: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]
    ) -> None: ...

    def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    def execute(self, namespace: str, pod: str, argv: Sequence[str]) -> str:
        """Runs ``argv`` in the pod's first container; returns its stdout, raises
        HarnessError with its stderr when it fails or does not finish."""
        ...

    def connect_port(self, namespace: str, pod: str, port: int) -> socket.socket:
        """A connected stream to ``port`` of the pod (a port-forward)."""
        ...


def connect(context: str | None = None, timeout: float = 5.0) -> ClusterApi:
    """The cluster of ``context`` (the kubeconfig's current one when None), checked to answer."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException

    config: Any = importlib.import_module("kubernetes.config")  # its loaders carry no type hints
    # Read now, not when the client was imported (it reads $KUBECONFIG once, at import).
    config_file = os.environ.get("KUBECONFIG") or None
    try:
        _, current = config.list_kube_config_contexts(config_file=config_file)
        chosen = context or current["name"]
        api_client = config.new_client_from_config(config_file=config_file, context=chosen)
    except (ConfigException, OSError, TypeError, KeyError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise ClusterUnreachable(
            f"no Kubernetes cluster configured ({reason}): set KUBECONFIG or write ~/.kube/config"
        ) from exc
    try:
        client.VersionApi(api_client).get_code(_request_timeout=timeout)
    except Exception as exc:  # urllib3's and the client's own errors alike mean: not reachable
        raise ClusterUnreachable(f"the cluster of context {chosen!r} does not answer: {exc}") from exc
    return ClusterApi(api_client, chosen)


class ClusterApi:
    def __init__(self, api_client: Any, context: str) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.context = context
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        from kubernetes import client

        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(labels))))

    def delete_namespace(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone, or already on its way out
                raise

    def apply(self, namespace: str, manifests: Sequence[Mapping[str, Any]]) -> None:
        """Creates the objects, those others refer to (ConfigMaps, Services) first."""
        utils: Any = importlib.import_module("kubernetes.utils")  # no type hints either
        for manifest in sorted(manifests, key=lambda m: _APPLY_ORDER.get(str(m.get("kind")), len(_APPLY_ORDER))):
            try:
                utils.create_from_dict(self.api_client, dict(manifest), namespace=namespace)
            except utils.FailToCreateError as exc:
                name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
                reasons = "; ".join(str(getattr(e, "reason", e)) for e in exc.api_exceptions)
                raise HarnessError(f"cannot create {name} in namespace {namespace}: {reasons}") from exc

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[Pod]:
        label_selector = ",".join(f"{key}={value}" for key, value in selector.items())
        listed = self.core.list_namespaced_pod(namespace, label_selector=label_selector)
        return [_pod(item) for item in listed.items]

    def delete_pod(self, namespace: str, name: str, grace_seconds: int) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_pod(self, namespace: str, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> None:
        body = {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}}
        self.core.patch_namespaced_pod(name, namespace, body)

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": replicas}})

    def _own_core(self) -> Any:
        """A client of its own for a websocket call: ``stream`` swaps ``call_api`` on the client
        it is given while it connects, which breaks every other call made on that client
        meanwhile, and overlapping port-forwards can leave it swapped (kubernetes-client/python#928)."""
        from kubernetes import client

        return client.CoreV1Api(client.ApiClient(self.api_client.configuration))

    def execute(self, namespace: str, pod: str, argv: Sequence[str], timeout: float = 30.0) -> str:
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import STDERR_CHANNEL, STDOUT_CHANNEL

        command = " ".join(argv)
        response = stream(
            self._own_core().connect_get_namespaced_pod_exec, pod, namespace,
            command=list(argv), stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False,
        )  # fmt: skip
        response.run_forever(timeout=timeout)
        if response.is_open():
            response.close()
            raise HarnessError(f"`{command}` in pod {pod} did not finish in {timeout:g} s")
        stdout = str(response.read_channel(STDOUT_CHANNEL))
        stderr = str(response.read_channel(STDERR_CHANNEL)).strip()
        try:
            code = response.returncode
        except (TypeError, KeyError, IndexError, ValueError):  # no status on the error channel
            code = None
        if code != 0:
            raise HarnessError(f"`{command}` in pod {pod} failed (exit status {code}): {stderr}")
        return stdout

    def connect_port(self, namespace: str, pod: str, port: int) -> socket.socket:
        from kubernetes.stream import portforward

        core = self._own_core()
        forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        stream: socket.socket = forward.socket(port)
        return stream


_APPLY_ORDER = {"Namespace": 0, "ConfigMap": 1, "Secret": 1, "Service": 2}


def _pod(item: Any) -> Pod:
    conditions = item.status.conditions or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    created = item.metadata.creation_timestamp
    return Pod(
        name=item.metadata.name,
        ip=item.status.pod_ip or "",
        ready=ready,
        deleting=item.metadata.deletion_timestamp is not None,
        labels=dict(item.metadata.labels or {}),
        created=created.timestamp() if created is not None else 0.0,
    )
