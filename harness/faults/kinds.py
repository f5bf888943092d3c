"""The faults: what each does to an instance and how it is rolled back.

A fault acts on a :class:`~harness.cluster.Cluster` and one of its instances by name,
so a rollback after a restart reaches the new process. Every fault's rollback is safe to
call when the fault was never injected or was already rolled back.
"""

from __future__ import annotations

import random
import resource
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from harness.backends import control
from harness.backends.behaviour import KnobError, pick_delay_ms
from harness.cluster import Cluster
from harness.errors import SpecError
from harness.processes import wait_gone
from harness.results.faults import FAULTS
from harness.runtimes.local import MAX_INSTANCES


class FaultUnavailable(Exception):
    """This machine cannot inject the fault for real; the step is skipped with this reason."""


class Fault(Protocol):
    kind: ClassVar[str]
    heals_itself: ClassVar[bool]  # the instance is back when inject() returns (a restart)

    def inject(self, cluster: Cluster, instance_name: str) -> None: ...

    def rollback(self, cluster: Cluster, instance_name: str) -> None: ...

    def describe(self) -> str: ...


@dataclass
class KillFault:
    """SIGKILL: the instance is gone; new connections are refused. Rollback starts it again."""

    kind: ClassVar[str] = "kill"
    heals_itself: ClassVar[bool] = False
    signum: ClassVar[int] = signal.SIGKILL

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        instance = cluster.instance(instance_name)
        cluster.runtime.signal(instance, self.signum)
        wait_gone([instance.pid])

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        cluster.restart(instance_name)

    def describe(self) -> str:
        return self.kind


@dataclass
class StopFault(KillFault):
    """SIGTERM: the instance shuts down gracefully. Rollback starts it again."""

    kind: ClassVar[str] = "stop"
    signum: ClassVar[int] = signal.SIGTERM


@dataclass
class HangFault:
    """SIGSTOP: the kernel still accepts connections but the process never answers."""

    kind: ClassVar[str] = "hang"
    heals_itself: ClassVar[bool] = False

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        cluster.runtime.signal(cluster.instance(instance_name), signal.SIGSTOP)

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        cluster.runtime.signal(cluster.instance(instance_name), signal.SIGCONT)

    def describe(self) -> str:
        return self.kind


@dataclass
class RestartFault(KillFault):
    """SIGTERM, then the instance starts again at once on the same address."""

    kind: ClassVar[str] = "restart"
    heals_itself: ClassVar[bool] = True
    signum: ClassVar[int] = signal.SIGTERM

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        super().inject(cluster, instance_name)
        cluster.restart(instance_name)

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        pass  # the restart is the fault and its own recovery


@dataclass
class ModeFault:
    """Changes the instance's behaviour through its control endpoint; rollback resets it."""

    kind: ClassVar[str] = "mode"
    heals_itself: ClassVar[bool] = False
    mode: dict[str, Any] = field(default_factory=dict)

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        control.set_mode(cluster.instance(instance_name), **self.mode)

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        control.reset(cluster.instance(instance_name))

    def describe(self) -> str:
        settings = ", ".join(f"{key}={value}" for key, value in self.mode.items())
        return f"{self.kind} ({settings})" if settings else self.kind


@dataclass
class SlowFault(ModeFault):
    """Every answer of the instance takes ``delay_ms`` longer, plus a fortio-style ``delay``
    distribution when given (``"100ms:50,1s:5"``: 100 ms for half, 1 s for 5 %)."""

    kind: ClassVar[str] = "slow"


@dataclass
class FailFault(ModeFault):
    """The instance answers ``fail_status`` (default 503) to a ``fail_rate`` share of requests."""

    kind: ClassVar[str] = "fail"


@dataclass
class UnhealthyFault(ModeFault):
    """Only the health endpoint fails (503); real requests are still served."""

    kind: ClassVar[str] = "unhealthy"


@dataclass
class BlackholeFault:
    """New connections to the instance time out instead of being refused.

    The instance's listen backlog is cut to 0 (one slot), the process is stopped
    (SIGSTOP) and the slot filled with a connection the harness holds open; with the
    queue full the kernel drops further SYNs, so connecting clients wait for their
    connect timeout, as with a host that vanished from the network. Requests already
    accepted hang as in ``hang``. The fault counts as injected only after a connection
    attempt really timed out. Rollback closes the held connections, lets the process run
    again and restores the backlog.
    """

    kind: ClassVar[str] = "blackhole"
    heals_itself: ClassVar[bool] = False
    held: list[socket.socket] = field(default_factory=list)
    backlog: int = 0  # the instance's backlog before the fault, restored by the rollback

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        unavailable = cluster.runtime.traits.no_blackhole_because
        if unavailable:
            raise FaultUnavailable(unavailable)
        instance = cluster.instance(instance_name)
        self.backlog = int(control.state(instance)["backlog"])
        control.set_backlog(instance, 0)
        cluster.runtime.signal(instance, signal.SIGSTOP)
        _allow_open_files(_MAX_HELD + 256)
        try:
            self._fill_listen_queue(instance.host, instance.port)
        except BaseException:
            self._release(cluster, instance_name)
            raise

    def _fill_listen_queue(self, host: str, port: int) -> None:
        for _ in range(_MAX_HELD):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(0.2)
            try:
                sock.connect((host, port))
            except TimeoutError:
                sock.close()
                return  # the queue is full: from now on connections time out
            except OSError as exc:
                sock.close()
                raise FaultUnavailable(f"cannot fill the listen queue of {host}:{port}: {exc}") from exc
            self.held.append(sock)
        raise FaultUnavailable(
            f"the listen queue of {host}:{port} took {_MAX_HELD} connections without filling up "
            "(net.ipv4.tcp_abort_on_overflow or syncookies may differ on this machine)"
        )

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        self._release(cluster, instance_name)

    def _release(self, cluster: Cluster, instance_name: str) -> None:
        for sock in self.held:
            sock.close()
        self.held.clear()
        instance = cluster.instance(instance_name)
        cluster.runtime.signal(instance, signal.SIGCONT)
        if self.backlog:
            control.set_backlog(instance, self.backlog)

    def describe(self) -> str:
        return self.kind


# With backlog 0 the queue has one slot; a few more cover connections the balancer
# opened in the moment between the backlog change and the stop.
_MAX_HELD = 64


def _allow_open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


@dataclass
class ScaleFault:
    """Grows or shrinks the cluster to ``to`` instances under load, with a graceful nginx reload."""

    kind: ClassVar[str] = "scale"
    heals_itself: ClassVar[bool] = True
    to: int = 3

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        cluster.scale(self.to)

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        pass  # a scale is a change, not a fault: the next step scales again if it wants

    def describe(self) -> str:
        return f"scale to {self.to}"


@dataclass
class ReloadFault:
    """A graceful nginx reload of the same config under load."""

    kind: ClassVar[str] = "reload"
    heals_itself: ClassVar[bool] = True

    def inject(self, cluster: Cluster, instance_name: str) -> None:
        cluster.balancer.reload(cluster.instances)
        cluster.journal.record("reloaded")

    def rollback(self, cluster: Cluster, instance_name: str) -> None:
        pass

    def describe(self) -> str:
        return self.kind


FAULT_KINDS = tuple(FAULTS)


def make_fault(kind: str, parameters: Mapping[str, Any], where: str) -> Fault:
    """Builds a fault from a scenario step; SpecError names ``where`` and what is wrong."""
    if kind not in FAULTS:
        raise SpecError(f"{where}: unknown fault {kind!r}; known faults: {', '.join(FAULT_KINDS)}")
    allowed = FAULTS[kind].parameters
    unknown = set(parameters) - set(allowed)
    if unknown:
        raise SpecError(f"{where}: fault {kind!r} takes no parameter {', '.join(sorted(unknown))}")
    try:
        values = {name: allowed[name](value) for name, value in parameters.items()}
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: bad parameter for fault {kind!r}: {exc}") from exc
    if kind == "slow":
        if "delay" in values:  # a distribution, checked here so a typo fails before the run
            try:
                pick_delay_ms(str(values["delay"]), random.Random(0))
            except KnobError as exc:
                raise SpecError(f"{where}: bad delay for fault 'slow': {exc}") from exc
            return SlowFault({"delay_ms": values.get("delay_ms", 0.0), "delay": values["delay"]})
        return SlowFault({"delay_ms": values.get("delay_ms", 500.0)})
    if kind == "fail":
        rate = values.get("fail_rate", 1.0)
        if not 0 < rate <= 1:
            raise SpecError(f"{where}: fail_rate must be above 0 and at most 1, got {rate}")
        return FailFault({"fail_rate": rate, "fail_status": values.get("fail_status", 503)})
    if kind == "unhealthy":
        return UnhealthyFault({"healthy": False})
    if kind == "scale":
        to = values.get("to")
        if to is None or not 1 <= to <= MAX_INSTANCES:
            raise SpecError(f"{where}: scale needs `to`, a number of instances from 1 to {MAX_INSTANCES}")
        return ScaleFault(to)
    return _WITHOUT_PARAMETERS[kind]()


# The build step of the faults that take no parameter; the others are built above from theirs.
_WITHOUT_PARAMETERS: dict[str, type[Fault]] = {
    fault.kind: fault for fault in (KillFault, StopFault, HangFault, RestartFault, BlackholeFault, ReloadFault)
}
