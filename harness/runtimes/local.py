"""Backend instances as local OS processes, one per loopback address (127.0.1.N).

One process per instance means a signal to a process is a fault of exactly one instance,
and one address per instance means nginx's ``$upstream_addr`` names it. Processes are
forked by a launcher that has the server already imported (see ``backends.launcher``).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.errors import AddressInUseError, StartupError
from harness.processes import parent_of, spawn, terminate, wait_gone
from harness.readiness import tail
from harness.runtimes.base import Instance, InstanceSpec, RuntimeTraits

MAX_INSTANCES = 1000
START_S_PER_INSTANCE = 0.03  # added to the start timeout per instance started at once
_PER_NETWORK = 250  # hosts .1 to .250 of each /24, so that no address ends in .0 or .255


def instance_host(index: int) -> str:
    """The loopback address of the ``index``-th instance (0-based): 127.0.1.1, 127.0.1.2, ...
    127.0.1.250, then 127.0.2.1, ... up to 127.0.4.250 (clients live on 127.10.0.0 and up)."""
    if not 0 <= index < MAX_INSTANCES:
        raise ValueError(f"instance index {index} outside 0..{MAX_INSTANCES - 1}")
    network, host = divmod(index, _PER_NETWORK)
    return f"127.0.{1 + network}.{host + 1}"


class LocalProcessRuntime:
    """Owns a launcher process and the instances it forks."""

    traits = RuntimeTraits(serves_unix_sockets=True, serves_tls=True)

    def balancer_container(self) -> None:
        return None  # the balancer is a process of this host, like the instances

    def __init__(self, log_dir: Path, start_timeout: float = 20.0) -> None:
        self.log_dir = log_dir
        self.start_timeout = start_timeout
        self._launcher: subprocess.Popen[bytes] | None = None
        self._instances: dict[str, Instance] = {}
        self._pending = b""

    def __enter__(self) -> LocalProcessRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The pids of the launcher and of every instance started, for the run's journal."""
        launcher = [self._launcher.pid] if self._launcher is not None else []
        return launcher + [instance.pid for instance in self._instances.values()]

    def start(self, specs: Sequence[InstanceSpec]) -> list[Instance]:
        launcher = self._ensure_launcher()
        assert launcher.stdin is not None
        for spec in specs:
            command = {
                "name": spec.name,
                "host": spec.host,
                "port": spec.port,
                "control_port": spec.control_port,
                "socket": spec.socket,
                "tls": [spec.tls.certificate, spec.tls.key] if spec.tls else None,
                "grpc": spec.grpc,
                "grpc_port": spec.grpc_port,
                "http2": spec.http2,
                "http2_port": spec.http2_port,
                "log": str(self._log_path(spec.name)),
            }
            launcher.stdin.write((json.dumps(command) + "\n").encode())
        launcher.stdin.flush()
        announced = self._await_announcements({spec.name: spec for spec in specs})
        for instance in announced:
            self._instances[instance.name] = instance
        return announced

    def _ensure_launcher(self) -> subprocess.Popen[bytes]:
        if self._launcher is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._launcher = spawn(
                [sys.executable, "-m", "harness.backends.launcher"],
                self.log_dir / "launcher.log",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._launcher

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _await_announcements(self, waiting: dict[str, InstanceSpec]) -> list[Instance]:
        """Reads ready lines until every instance in ``waiting`` has announced itself."""
        launcher = self._ensure_launcher()
        assert launcher.stdout is not None
        ready: dict[str, Instance] = {}
        # Each instance costs the launcher's child some CPU to start (about 10 ms on two
        # cores): a thousand take ten seconds before anything is late.
        started = time.monotonic()
        deadline = started + self.start_timeout + START_S_PER_INSTANCE * len(waiting)
        with selectors.DefaultSelector() as selector:
            selector.register(launcher.stdout, selectors.EVENT_READ)
            while len(ready) < len(waiting):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(timeout=remaining):
                    missing = [name for name in waiting if name not in ready]
                    late = missing[:10] + ([f"and {len(missing) - 10} more"] if len(missing) > 10 else [])
                    raise StartupError(
                        f"instances not ready after {deadline - started:.0f} s: {', '.join(late)}; "
                        f"last lines of the launcher's log:\n{tail(self.log_dir / 'launcher.log')}"
                    )
                chunk = os.read(launcher.stdout.fileno(), 65536)
                if not chunk:
                    raise StartupError(
                        f"the instance launcher exited; last lines of its log:\n{tail(self.log_dir / 'launcher.log')}"
                    )
                self._pending += chunk
                *lines, self._pending = self._pending.split(b"\n")
                for line in lines:
                    try:
                        message = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # not an announcement (an instance printed something else)
                    if not isinstance(message, dict):
                        continue
                    spec = waiting.get(str(message.get("name")))
                    if spec is not None:
                        ready[spec.name] = self._instance(spec, message)
        return [ready[name] for name in waiting]

    def _instance(self, spec: InstanceSpec, message: dict[str, object]) -> Instance:
        if not message.get("ready"):
            error = message.get("error", "unknown error")
            if "in use" in str(error):
                raise AddressInUseError(f"instance {spec.name} cannot bind {spec.host}: {error}")
            raise StartupError(
                f"instance {spec.name} failed to start: {error}; last lines of its log:\n"
                f"{tail(self._log_path(spec.name))}"
            )
        return Instance(
            name=spec.name,
            service=spec.service,
            host=spec.host,
            port=int(str(message["port"])),
            control_port=int(str(message["control_port"])),
            pid=int(str(message["pid"])),
            socket=spec.socket,
            tls=spec.tls,
            grpc_port=int(str(message.get("grpc_port") or 0)),
            http2_port=int(str(message.get("http2_port") or 0)),
        )

    def restart(self, instance: Instance) -> Instance:
        current = self._instances.get(instance.name)
        if current is not None:
            self._stop_pids([current.pid])
        (restarted,) = self.start([instance.same_place()])
        return restarted

    def signal(self, instance: Instance, signum: int) -> None:
        if self._owned(instance.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signum)

    def stop(self, instance: Instance) -> None:
        self._instances.pop(instance.name, None)
        self._stop_pids([instance.pid])

    def close(self) -> None:
        pids = [instance.pid for instance in self._instances.values()]
        self._instances.clear()
        self._stop_pids(pids)
        if self._launcher is not None:
            launcher, self._launcher = self._launcher, None
            for stream in (launcher.stdin, launcher.stdout):
                if stream is not None:
                    stream.close()
            terminate(launcher)

    def _owned(self, pid: int) -> bool:
        """The pid is still one of the launcher's children.

        The launcher lets the kernel reap its children, so the pid of an instance that
        already exited may belong to an unrelated process by now: never signal that one.
        """
        return self._launcher is not None and parent_of(pid) == self._launcher.pid

    def _stop_pids(self, pids: list[int], grace: float = 3.0) -> None:
        owned = [pid for pid in pids if self._owned(pid)]
        for pid in owned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                # A stopped (hung) instance acts on SIGTERM only once it runs again.
                os.kill(pid, signal.SIGCONT)
        for pid in wait_gone(owned, timeout=grace):
            if self._owned(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_gone(owned, timeout=grace)
