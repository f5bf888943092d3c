"""Instances as Docker containers, through the Docker SDK: the seed's docker-compose world.

Each instance is one container of the harness's runtime image running the same instance
server as the local runtime, on the host's network and its own loopback address
(127.0.1.N), so all traffic stays on this machine and the engine adds no network of its
own. Faults map to the engine's operations: SIGKILL is ``docker kill``, SIGSTOP and
SIGCONT are ``docker pause`` and ``unpause`` (the freezer: the process is frozen, its
kernel still accepts connections), other signals are ``docker kill --signal``. Every
container carries the run's label, which teardown and the reaper remove by.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import reaper
from harness.errors import StartupError
from harness.readiness import WaitStrategy
from harness.runtimes.base import Instance, InstanceSpec, RuntimeTraits
from harness.runtimes.docker_engine import LABEL, engine, engine_url, ensure_runtime_image

RUN_LABEL = f"{LABEL}.run"


def run_label(run_dir: Path) -> str:
    """A label value (and container name part) unique to the run: its directory's path, made safe."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", str(run_dir.resolve()).strip("/"))[-100:]


class DockerRuntime:
    traits = RuntimeTraits()  # containers keep their address when restarted; the balancer runs in one too

    def __init__(self, run_dir: Path, base: str = "offline", client: Any = None) -> None:
        self.client = client or engine()
        self.image = ensure_runtime_image(self.client, base)
        self.run = run_label(run_dir)
        self._containers: dict[str, Any] = {}
        self._instances: dict[str, Instance] = {}
        reaper.watch_containers(self.run, engine_url() or "")

    @property
    def pids(self) -> list[int]:
        return [instance.pid for instance in self._instances.values()]

    def _run(self, spec: InstanceSpec) -> Any:
        command = [
            "python3", "-m", "harness.backends.serve", "--name", spec.name, "--host", spec.host,
            "--port", str(spec.port), "--control-host", spec.host, "--control-port", str(spec.control_port),
        ]  # fmt: skip
        return self.client.containers.run(
            self.image,
            command,
            name=f"lbh-{self.run}-{spec.name}"[-120:].lstrip("-_."),
            network_mode="host",
            detach=True,
            labels={LABEL: "instance", RUN_LABEL: self.run, f"{LABEL}.instance": spec.name},
        )

    def _ready(self, container: Any, spec: InstanceSpec) -> Instance:
        def announced() -> dict[str, Any] | None:
            container.reload()
            if container.status in {"exited", "dead"}:
                logs = container.logs().decode(errors="replace").strip().splitlines()[-3:]
                raise StartupError(f"container of {spec.name} exited: {' | '.join(logs)}")
            for line in container.logs(stderr=False).decode(errors="replace").splitlines():
                if line.startswith("{") and '"ready"' in line:
                    message: dict[str, Any] = json.loads(line)
                    return message
            return None

        ready = WaitStrategy(f"container of {spec.name} to listen", timeout=30.0, interval=0.05).wait(announced)
        return Instance(
            spec.name, spec.service, spec.host, int(ready["port"]), int(ready["control_port"]),
            int(container.attrs["State"]["Pid"]),
        )  # fmt: skip

    def start(self, specs: Sequence[InstanceSpec]) -> list[Instance]:
        started = [(spec, self._run(spec)) for spec in specs]  # all at once, then wait for each
        for spec, container in started:
            self._containers[spec.name] = container
        instances = [self._ready(container, spec) for spec, container in started]
        self._instances.update((instance.name, instance) for instance in instances)
        return instances

    def restart(self, instance: Instance) -> Instance:
        self._remove(instance.name)
        (restarted,) = self.start([instance.same_place()])
        return restarted

    def signal(self, instance: Instance, signum: int) -> None:
        container = self._containers.get(instance.name)
        if container is None:
            return
        if signum == signal.SIGSTOP:
            container.pause()
        elif signum == signal.SIGCONT:
            container.reload()
            if container.status == "paused":
                container.unpause()
        else:
            container.kill(signal=signum)

    def stop(self, instance: Instance) -> None:
        self._instances.pop(instance.name, None)
        self._remove(instance.name, grace=5)

    def _remove(self, name: str, grace: int = 0) -> None:
        import docker

        container = self._containers.pop(name, None)
        if container is None:
            return
        try:
            container.reload()
            if container.status == "paused":
                container.unpause()
            if grace and container.status == "running":
                container.stop(timeout=grace)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def close(self) -> None:
        import docker

        for name in list(self._containers):
            self._remove(name)
        self._instances.clear()
        # Anything else of the run (a container started while an error unwound): by label.
        # One call for the list: the SDK's containers.list inspects each one afterwards and
        # fails on a container removed meanwhile (by the reaper of a run that died).
        for entry in self.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={self.run}"}):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(entry["Id"], force=True)
        reaper.forget_containers(self.run)

    def balancer_container(self) -> ContainerForBalancer:
        return ContainerForBalancer(self.client, self.image, self.run)

    def __enter__(self) -> DockerRuntime:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ContainerForBalancer:
    """A balancer's binary in a container of the run's image: ``docker run`` in the foreground
    (signals to it reach the balancer), the run directory mounted at the same path, so the
    rendered config, its logs and the access log are where the harness reads them."""

    def __init__(self, client: Any, image: str, run: str) -> None:
        self.client = client
        self.image = image
        self.run = run

    def _name(self, name: str) -> str:
        return f"lbh-{self.run}-{name}"[-120:].lstrip("-_.")

    def command(self, argv: list[str], run_dir: Path, name: str) -> list[str]:
        return [
            "docker", "-H", engine_url() or "", "run", "--rm", "--name", self._name(name), "--network", "host",
            "--label", f"{LABEL}=balancer", "--label", f"{RUN_LABEL}={self.run}",
            "--volume", f"{run_dir.resolve()}:{run_dir.resolve()}", self.image, *argv,
        ]  # fmt: skip

    def master_pid(self, name: str) -> int | None:
        import docker

        try:
            pid = int(self.client.containers.get(self._name(name)).attrs["State"]["Pid"])
        except docker.errors.NotFound:
            return None
        return pid or None
