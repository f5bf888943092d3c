"""nginx as the topology's balancer Deployment, in the run's Kubernetes namespace.

The harness renders the user's config as for a local nginx (its access log format, its
paths in the pod's state directory), with each upstream server expanded into the
adopted pods' addresses in instance order, as a local run lists its instances. The
shipped overlays leave ``server api-gateway:3000`` to the headless Service instead, but
nginx resolves that name only when it loads its config, in whatever order the cluster's
DNS answers (CoreDNS shuffles it), and a reload right after a pod change can meet DNS
that has not caught up: the exact-order and failover checks need the order and the
moment fixed. The ConfigMap seeds the pod's config; a reload writes the new one into the
pod's state directory and signals nginx there. Clients reach nginx through a loopback
port forwarded to its pod. At the end the access log is read from the pod, pod addresses
rewritten to the instances' own, so the failover checks read it as any nginx log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from harness.balancers.base import BalancerDefaults
from harness.balancers.nginx.config import NginxConfig
from harness.balancers.nginx.render import RenderSettings, plan_listens, render
from harness.errors import SpecError
from harness.k8s.port_forward import LocalForward
from harness.k8s.topology import BALANCER, BALANCER_PORT, INSTANCE_PORT, RUNNING_CONFIG, STATE_DIR
from harness.load import probes
from harness.load.route import FixedRoute
from harness.net import LOOPBACK
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance
from harness.runtimes.kubernetes import ROLLOUT_TIMEOUT, KubernetesRuntime

_POD_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+:\d+")


def render_in_cluster(
    config: NginxConfig, workers: int = 1, zone: bool = False, pods: Sequence[Instance] | None = None
) -> str:
    """The config the balancer pod runs: the harness's log format and paths in the pod, each
    service's servers the ``pods`` given (their addresses in the cluster), else the Service's name."""
    upstreams = list(pods) if pods is not None else [
        Instance(service, service, service, INSTANCE_PORT, 0, 0) for service in config.services
    ]  # fmt: skip
    # The other upstreams' services answer through their Services' names.
    upstreams += [Instance(service, service, service, INSTANCE_PORT, 0, 0) for service in config.side_services]
    # The route's listen on the pod's port, every other listen on a port of its own after it.
    spare = iter(range(BALANCER_PORT + 1, BALANCER_PORT + 1000))
    listens = plan_listens(config, str(BALANCER_PORT), lambda: str(next(spare)))
    settings = RenderSettings(
        run_dir=Path(STATE_DIR), listen=str(BALANCER_PORT), workers=workers, zone=zone, listens=listens
    )
    return render(config, upstreams, settings)


class InClusterNginx(BalancerDefaults):
    name = "nginx"

    def __init__(
        self, config: NginxConfig, run_dir: Path, runtime: KubernetesRuntime, workers: int = 1, zone: bool = False
    ) -> None:
        if len(config.services) != 1:
            raise SpecError(f"--runtime k8s balances one service; {config.path} names {', '.join(config.services)}")
        self.config = config
        self.run_dir = run_dir
        self.runtime = runtime
        self.workers = workers
        self.zone = zone
        self.pod = ""
        self._forward: LocalForward | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._forward.port if self._forward else 0}"

    @property
    def route(self) -> FixedRoute:
        return FixedRoute(self.url)

    @property
    def config_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    @property
    def pid(self) -> int | None:
        return None  # it runs in the cluster, not on this machine

    def render_config(self, instances: Sequence[Instance]) -> str:
        """The config for ``instances``, each as its current pod's address; kept in the run dir too."""
        pods = [
            Instance(i.name, i.service, self.runtime.pod_of(i.name).ip, INSTANCE_PORT, 0, 0) for i in instances
        ]  # fmt: skip
        text = render_in_cluster(self.config, self.workers, self.zone, pods)
        self.config_path.write_text(text)
        return text

    def start(self, instances: Sequence[Instance]) -> None:
        runtime = self.runtime
        topology = runtime.topology(self.config.services[0], len(instances), self.render_config(instances))
        runtime.api.apply(runtime.namespace, topology.balancer)
        selector = {"app": BALANCER}

        def ready_pod() -> str | None:
            ready = [p for p in runtime.api.pods(runtime.namespace, selector) if p.ready and not p.deleting]
            return ready[0].name if ready else None

        self.pod = WaitStrategy(
            f"the balancer pod in namespace {runtime.namespace}", timeout=ROLLOUT_TIMEOUT, interval=0.5
        ).wait(ready_pod)
        pod = self.pod
        self._forward = LocalForward(lambda: runtime.api.connect_port(runtime.namespace, pod, BALANCER_PORT), pod)

    def _nginx(self, *argv: str) -> str:
        return self.runtime.api.execute(self.runtime.namespace, self.pod, ["nginx", "-c", RUNNING_CONFIG, *argv])

    def reload(self, instances: Sequence[Instance]) -> float:
        """Writes the config for ``instances`` into the pod, checks it with ``nginx -t`` and
        reloads; returns once every instance answers through nginx."""
        started = time.monotonic()
        self.reload_in_pod(instances)
        probes.serve_through(self.route, instances)
        return time.monotonic() - started

    def reload_in_pod(self, instances: Sequence[Instance]) -> None:
        text = self.render_config(instances)
        # The text is an argument of its own: no shell ever parses it.
        write = ["sh", "-c", 'printf "%s" "$1" > "$2"', "sh", text, RUNNING_CONFIG]
        self.runtime.api.execute(self.runtime.namespace, self.pod, write)
        self._nginx("-t", "-q")
        self._nginx("-s", "reload")

    def version(self) -> str:
        """The pod's nginx version (``nginx -v`` writes it to stderr)."""
        printed = self.runtime.api.execute(self.runtime.namespace, self.pod, ["sh", "-c", "nginx -v 2>&1"])
        return printed.strip().removeprefix("nginx version: ")

    def reported_version(self) -> str | None:
        return self.version()

    def stop(self) -> None:
        if self._forward is None:
            return
        forward, self._forward = self._forward, None
        forward.close()
        try:
            self.access_log.write_text(self.fetch_access_log())
        except Exception as exc:  # the run's numbers from the clients stand without it
            (self.run_dir / "access.log.error").write_text(f"could not read the balancer pod's access log: {exc}\n")

    def fetch_access_log(self) -> str:
        api, namespace = self.runtime.api, self.runtime.namespace
        log = f"{STATE_DIR}/access.log"
        # Reopening makes nginx write out its buffered log lines; then wait until the file stops growing.
        self._nginx("-s", "reopen")
        sizes: list[str] = []

        def settled() -> bool | None:
            sizes.append(api.execute(namespace, self.pod, ["wc", "-c", log]).split()[0])
            return True if len(sizes) > 1 and sizes[-1] == sizes[-2] else None

        WaitStrategy("the balancer's access log to be written out", timeout=10.0, interval=0.3).wait(settled)
        text = api.execute(namespace, self.pod, ["cat", log])
        addresses = self.runtime.addresses
        return _POD_ADDRESS.sub(lambda match: addresses.get(match[0], match[0]), text)
