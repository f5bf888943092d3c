"""A kube-proxy "config": a Service manifest, and the readiness probe of the pods it selects.

kube-proxy has no config of its own: what it does follows from the Service (its ClusterIP
and port, ``sessionAffinity``) and, through the endpoints, from the readiness probe of the
Deployment whose pods the Service selects. The Deployment is looked for in the Service's
file and in the other manifests of its directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.balancers.base import OneGroup, Peer, ServerClaims
from harness.checks.health_models import Readiness
from harness.errors import ConfigError

DEFAULT_CLUSTER_IP = "10.96.0.10"  # an address of Kubernetes' default service range


@dataclass
class KubeProxyConfig(OneGroup):
    path: Path
    service: str
    cluster_ip: str
    port: int
    app: str  # the pods' label the Service selects, the harness's service name
    affinity_timeout_s: float | None  # sessionAffinity: ClientIP
    readiness: Readiness
    balancer: str = "kube-proxy"
    grpc: bool = False  # the Service's port carries gRPC (named grpc, or appProtocol grpc)
    http2: bool = False  # the Service's port carries plain HTTP/2 (appProtocol kubernetes.io/h2c, named http2)

    @property
    def grpc_services(self) -> list[str]:
        return [self.app] if self.grpc else []

    @property
    def speaks_grpc(self) -> bool:
        return self.grpc

    @property
    def http2_services(self) -> list[str]:
        return [self.app] if self.http2 else []

    @property
    def speaks_http2(self) -> bool:
        return self.http2

    @property
    def offers_http2(self) -> bool:
        return self.http2

    @property
    def services(self) -> list[str]:
        return [self.app]

    def claims(self) -> str:
        return ""

    def server_claims(self) -> ServerClaims:
        return ServerClaims()

    def inferred_algorithm(self) -> str:
        return "ip_hash" if self.affinity_timeout_s is not None else "random"

    def peers(self) -> list[Peer]:
        return [Peer(self.app, 1, serves=True)]

    def effective_workers(self, requested: int | None) -> int:
        return 1

    def shares_counts(self) -> bool:
        return True


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc


def _readiness(path: Path, selector: dict[str, str]) -> Readiness:
    candidates = [path, *sorted(p for p in path.parent.glob("*.y*ml") if p != path)]
    for candidate in candidates:
        for doc in _documents(candidate):
            if doc.get("kind") != "Deployment":
                continue
            template = (doc.get("spec") or {}).get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not all(labels.get(k) == v for k, v in selector.items()):
                continue
            for container in (template.get("spec") or {}).get("containers") or []:
                probe = container.get("readinessProbe")
                if probe:
                    return Readiness(
                        path=str((probe.get("httpGet") or {}).get("path", "/api/health")),
                        period_s=float(probe.get("periodSeconds", 10)),
                        timeout_s=float(probe.get("timeoutSeconds", 1)),
                        failure_threshold=int(probe.get("failureThreshold", 3)),
                        success_threshold=int(probe.get("successThreshold", 1)),
                    )
    raise ConfigError(f"{path}: no Deployment with a readinessProbe selected by {selector} next to it")


def load_config(path: Path) -> KubeProxyConfig:
    """The first Service of ``path`` with the readiness probe of the pods it selects."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    service = next((doc for doc in _documents(path) if doc.get("kind") == "Service"), None)
    if service is None:
        raise ConfigError(f"{path}: no Service in it: kube-proxy balances a Service")
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    ports = spec.get("ports") or []
    if len(selector) != 1 or "app" not in selector or not ports:
        raise ConfigError(f"{path}: the Service needs a selector on `app` and a port, got {selector} and {ports}")
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
        affinity = float(config.get("timeoutSeconds", 10800))
    cluster_ip = spec.get("clusterIP") or DEFAULT_CLUSTER_IP
    if cluster_ip == "None":
        raise ConfigError(f"{path}: a headless Service (clusterIP: None) is not balanced by kube-proxy")
    return KubeProxyConfig(
        path=path,
        service=str((service.get("metadata") or {}).get("name", "service")),
        cluster_ip=str(cluster_ip),
        port=int(ports[0].get("port", 80)),
        app=str(selector["app"]),
        affinity_timeout_s=affinity,
        readiness=_readiness(path, selector),
        grpc=_carries_grpc(ports[0]),
        http2=_carries_http2(ports[0]),
    )


H2C_APP_PROTOCOLS = {"h2c", "kubernetes.io/h2c"}


def _carries_grpc(port: dict[str, Any]) -> bool:
    """A Service port for gRPC, by the names clusters and meshes read: ``name: grpc`` (or
    ``grpc-...``), ``appProtocol: grpc``."""
    name = str(port.get("name", ""))
    return name == "grpc" or name.startswith("grpc-") or str(port.get("appProtocol", "")) == "grpc"


def _carries_http2(port: dict[str, Any]) -> bool:
    """A Service port for plain HTTP over cleartext HTTP/2: ``appProtocol: kubernetes.io/h2c``, or
    ``name: http2`` / ``h2c`` (or ``http2-...``), on a port not named for gRPC."""
    name = str(port.get("name", ""))
    named = name in {"http2", "h2c"} or name.startswith(("http2-", "h2c-"))
    return not _carries_grpc(port) and (named or str(port.get("appProtocol", "")) in H2C_APP_PROTOCOLS)
