"""The real client wrapper against a recording HTTP server on loopback: the requests the
official client sends for each operation (method, path, body), and ``connect``'s reasons."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from harness import reaper
from harness.errors import HarnessError
from harness.k8s.api import ClusterApi, ClusterUnreachable, connect
from harness.k8s.topology import fit_to_run, overlay_for, render_overlay

POD = {
    "metadata": {
        "name": "api-gateway-7d9-abcde",
        "labels": {"app": "api-gateway"},
        "creationTimestamp": "2026-11-27T12:00:00Z",
    },
    "status": {"podIP": "10.244.0.7", "conditions": [{"type": "Ready", "status": "True"}]},
}


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, self.path, body))
        if self.path.startswith("/version"):
            answer: Any = {
                "major": "1", "minor": "37", "gitVersion": "v1.37.0", "gitCommit": "0", "gitTreeState": "clean",
                "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
            }  # fmt: skip
        elif self.command == "GET" and "/pods" in self.path:
            answer = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [POD]}
        elif self.command == "GET" and self.path.startswith("/api/v1/namespaces/"):
            name = self.path.split("/")[4]
            labels = {"app.kubernetes.io/managed-by": "lb-harness"} if name.startswith("lb-harness-") else {}
            answer = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name, "labels": labels}}
        elif self.command == "DELETE" and "/pods/" in self.path:
            answer = POD  # a pod's deletion answers with the pod, marked for deletion
        elif self.command == "DELETE":
            answer = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        else:
            answer = body or {}
        status = 201 if self.command == "POST" else 200
        if self.command == "POST" and ((body or {}).get("metadata") or {}).get("name") == "taken":
            answer, status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists"}, 409
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClusterApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "recorder",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "recorder", "context": {"cluster": "c", "user": "u"}}],
    }  # fmt: skip
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    Recorder.requests = []
    yield connect()
    server.shutdown()
    server.server_close()


def test_connect_names_the_context_and_asks_for_the_version(api: ClusterApi) -> None:
    assert api.context == "recorder"
    assert Recorder.requests[0][:2] == ("GET", "/version/")


def test_each_operation_sends_the_request_kubernetes_expects(api: ClusterApi) -> None:
    Recorder.requests = []
    api.create_namespace("lb-harness-1", {"app.kubernetes.io/managed-by": "lb-harness"})
    topology = fit_to_run(render_overlay(overlay_for("round_robin")), "api-gateway", "img", 3, "events {}\n")
    api.apply("lb-harness-1", topology.backends)
    pods = api.pods("lb-harness-1", {"app": "api-gateway"})
    api.patch_pod("lb-harness-1", "api-gateway-7d9-abcde", {"lb-harness/instance": "api-gateway-1"}, {})
    api.scale("lb-harness-1", "api-gateway", 4)
    api.delete_pod("lb-harness-1", "api-gateway-7d9-abcde", 0)
    api.delete_namespace("lb-harness-1")
    sent = [(method, path.split("?")[0]) for method, path, _ in Recorder.requests]
    assert sent == [
        ("POST", "/api/v1/namespaces"),
        ("POST", "/api/v1/namespaces/lb-harness-1/services"),  # what others refer to comes first
        ("POST", "/apis/apps/v1/namespaces/lb-harness-1/deployments"),
        ("GET", "/api/v1/namespaces/lb-harness-1/pods"),
        ("PATCH", "/api/v1/namespaces/lb-harness-1/pods/api-gateway-7d9-abcde"),
        ("PATCH", "/apis/apps/v1/namespaces/lb-harness-1/deployments/api-gateway/scale"),
        ("DELETE", "/api/v1/namespaces/lb-harness-1/pods/api-gateway-7d9-abcde"),
        ("DELETE", "/api/v1/namespaces/lb-harness-1"),
    ], sent
    bodies = {path.split("?")[0]: body for _, path, body in Recorder.requests}
    assert bodies["/api/v1/namespaces"]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "lb-harness"}
    assert bodies["/apis/apps/v1/namespaces/lb-harness-1/deployments"]["spec"]["replicas"] == 3
    assert bodies["/apis/apps/v1/namespaces/lb-harness-1/deployments/api-gateway/scale"] == {"spec": {"replicas": 4}}
    assert "labelSelector=app%3Dapi-gateway" in Recorder.requests[3][1]
    assert "app.kubernetes.io/managed-by" in Recorder.requests[1][2]["metadata"]["labels"]
    assert "gracePeriodSeconds=0" in Recorder.requests[6][1]
    assert pods[0].name == "api-gateway-7d9-abcde" and pods[0].ip == "10.244.0.7" and pods[0].ready
    assert not pods[0].deleting and pods[0].created > 0


def test_a_cluster_that_does_not_answer_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "c", "user": "u"}}],
    }  # fmt: skip
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    with pytest.raises(ClusterUnreachable, match="the cluster of context 'gone' does not answer"):
        connect(timeout=1.0)
    with pytest.raises(ClusterUnreachable, match="no Kubernetes cluster configured"):
        connect("no-such-context")


def test_the_reaper_deletes_a_namespace_the_harness_made_and_only_such(api: ClusterApi) -> None:
    Recorder.requests = []
    commands = "k8s-namespace lb-harness-dead recorder\nk8s-namespace kube-system recorder\n"
    commands += "k8s-namespace lb-harness-done recorder\nforget-k8s-namespace lb-harness-done\n"
    assert reaper.main(io.StringIO(commands)) == 0  # the pipe closed: the harness is gone
    deleted = [path.split("?")[0] for method, path, _ in Recorder.requests if method == "DELETE"]
    assert deleted == ["/api/v1/namespaces/lb-harness-dead"], Recorder.requests


def test_an_object_that_cannot_be_created_is_named_with_the_servers_reason(api: ClusterApi) -> None:
    taken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "taken"}, "data": {}}
    with pytest.raises(HarnessError, match="cannot create ConfigMap/taken in namespace lb-harness-1: Conflict"):
        api.apply("lb-harness-1", [taken])
