"""kube-proxy as a balancer of the harness: nftables rules, endpoints kept by readiness probes.

Runs inside the harness's own network namespace (see ``harness.netns``): the Service's
ClusterIP is an address on that namespace's loopback, and the rules live only there.
Like the kubelet and kube-proxy together, the balancer probes every instance with the
readiness probe's own settings (path, period, timeout, failure and success thresholds),
keeps the ready ones as endpoints and rewrites the rules when that set changes. Every
change is a line in ``endpoints.jsonl``: when an instance left or rejoined the endpoints.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gevent

from harness.balancers.base import BalancerDefaults
from harness.balancers.kubeproxy.config import KubeProxyConfig
from harness.balancers.kubeproxy.rules import deletion, ruleset
from harness.errors import StartupError
from harness.load.route import FixedRoute
from harness.netns import nft_binary
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance


@dataclass
class _ProbeState:
    ready: bool = False
    failures: int = 0
    successes: int = 0


def nft_version() -> str:
    done = subprocess.run([nft_binary(), "--version"], capture_output=True, text=True, check=False)
    return f"kube-proxy's nftables mode, {done.stdout.strip()}"


class KubeProxyBalancer(BalancerDefaults):
    name = "kube-proxy"

    def __init__(self, config: KubeProxyConfig, run_dir: Path) -> None:
        nft_binary()
        self.config = config
        self.run_dir = run_dir
        self._instances: list[Instance] = []
        self._states: dict[str, _ProbeState] = {}
        self._prober: gevent.Greenlet | None = None
        self._applied: tuple[tuple[str, int], ...] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.cluster_ip}:{self.config.port}"

    @property
    def route(self) -> FixedRoute:
        return FixedRoute(self.url, grpc=self.config.grpc, http2=self.config.http2)

    @property
    def config_path(self) -> Path:
        return self.run_dir / "kube-proxy.nft"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "endpoints.jsonl"  # kube-proxy logs no request: its endpoints' changes

    @property
    def pid(self) -> int | None:
        return None  # rules in the kernel, no process

    def _probe(self, instance: Instance) -> bool:
        readiness = self.config.readiness
        connection = http.client.HTTPConnection(instance.host, instance.port, timeout=readiness.timeout_s)
        try:
            connection.request("GET", readiness.path)
            return 200 <= connection.getresponse().status < 400
        except OSError:
            return False
        finally:
            connection.close()

    def _probe_all(self) -> None:
        readiness = self.config.readiness
        for instance in list(self._instances):
            state = self._states.setdefault(instance.name, _ProbeState())
            if self._probe(instance):
                state.successes, state.failures = state.successes + 1, 0
                if not state.ready and state.successes >= readiness.success_threshold:
                    state.ready = True
                    self._record(instance, True)
            else:
                state.failures, state.successes = state.failures + 1, 0
                if state.ready and state.failures >= readiness.failure_threshold:
                    state.ready = False
                    self._record(instance, False)
        self._apply()

    def _record(self, instance: Instance, ready: bool) -> None:
        with self.access_log.open("a") as log:
            log.write(json.dumps({"time": time.time(), "instance": instance.name, "ready": ready}) + "\n")

    def _apply(self) -> None:
        ready = [i for i in self._instances if self._states.get(i.name, _ProbeState()).ready]
        # A gRPC Service's targetPort is the pods' gRPC port; the readiness probe stays on HTTP.
        endpoints = tuple((i.host, i.grpc_port or i.http2_port or i.port) for i in ready)
        if endpoints == self._applied:
            return
        text = ruleset(self.config.cluster_ip, self.config.port, endpoints, self.config.affinity_timeout_s)
        self.config_path.write_text(text)
        done = subprocess.run([nft_binary(), "-f", str(self.config_path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StartupError(f"nft rejected the rules in {self.config_path}: {done.stderr.strip()}")
        self._applied = endpoints

    def _probe_forever(self) -> None:
        while True:
            gevent.sleep(self.config.readiness.period_s)
            self._probe_all()

    def start(self, instances: Sequence[Instance]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._instances = list(instances)

        # The first probes run at once, as the kubelet's do after initialDelaySeconds=0.
        def all_ready() -> bool | None:
            self._probe_all()
            return True if len(self._applied or ()) == len(self._instances) else None

        WaitStrategy("every instance to pass its readiness probe", timeout=30.0, interval=0.05).wait(all_ready)
        self._prober = gevent.spawn(self._probe_forever)

    def reload(self, instances: Sequence[Instance]) -> float:
        started = time.monotonic()
        self._instances = list(instances)
        self._probe_all()
        return time.monotonic() - started

    def stop(self) -> None:
        if self._prober is not None:
            self._prober.kill()
            self._prober = None
        if self._applied is not None:
            subprocess.run([nft_binary(), "-f", "-"], input=deletion(), capture_output=True, text=True, check=False)
            self._applied = None

    def __enter__(self) -> KubeProxyBalancer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
