"""What happened to each fault of a scenario: the record the timeline keeps and the checks read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRecord:
    """What happened to one fault step, with wall-clock times (seconds since the epoch)."""

    index: int
    kind: str
    description: str
    instance: str
    address: str
    planned_at: float
    injected_at: float | None = None
    inject_returned_at: float | None = None  # the fault acted somewhere between the two
    rolled_back_at: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    planned_rollback: bool = False  # the scenario set a rollback time; else it came at the end of the load
    skipped: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.injected_at is not None and self.rolled_back_at is None


# The check families a fault kind belongs to: what the fault does that a check can see.
GONE = "gone"  # the process is gone (or restarting): requests in flight on it are lost
CLUSTER_CHANGE = "cluster change"  # the balancer's set of instances changes under load
NO_CONNECT = "no connect"  # new connections to it fail: refused, or the SYN goes unanswered
NO_ANSWER = "no answer"  # requests on it wait for a timeout instead of failing at once
READ_TIMEOUT = "read timeout"  # a connection opens and no answer comes (the read timeout applies)
CONNECT_TIMEOUT = "connect timeout"  # the connection never opens (the connect timeout applies)
FAILS_TRAFFIC = "fails traffic"  # requests to it fail, so passive checks count failures
FAILS_HEALTH = "fails health"  # active checks and readiness probes see it fail
RESTARTED = "restarted on rollback"  # the rollback starts the process again
HEALTHY_AGAIN = "healthy again on rollback"  # the rollback makes its health checks pass again
ERROR_ANSWERS = "error answers"  # it answers, with the status the fault asks for
HEALTH_ONLY = "health endpoint only"  # only its health endpoint fails; traffic is served
SLOWER = "slower"  # it answers, later


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault as scenarios name it: its parameters and the check families it calls for."""

    name: str
    what: str
    families: frozenset[str]
    parameters: dict[str, type] = field(default_factory=dict)
    acts_on_instance: bool = True  # False: it acts on the cluster (a scale, a reload)

    def has(self, family: str) -> bool:
        return family in self.families


def _kind(name: str, what: str, *families: str, **parameters: type) -> FaultKind:
    return FaultKind(name, what, frozenset(families), dict(parameters))


# Every fault kind, once; the build step of each is in harness.faults.kinds, the checks ask families.
FAULTS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        _kind("kill", "SIGKILL", GONE, NO_CONNECT, FAILS_TRAFFIC, FAILS_HEALTH, RESTARTED, HEALTHY_AGAIN),
        _kind("stop", "SIGTERM", GONE, NO_CONNECT, FAILS_TRAFFIC, FAILS_HEALTH, RESTARTED, HEALTHY_AGAIN),
        _kind("hang", "SIGSTOP", NO_ANSWER, READ_TIMEOUT, FAILS_TRAFFIC, FAILS_HEALTH),
        _kind("restart", "SIGKILL, then started again at once", GONE, NO_CONNECT),
        _kind(
            "blackhole", "connections never open", NO_CONNECT, NO_ANSWER, CONNECT_TIMEOUT, FAILS_TRAFFIC, FAILS_HEALTH
        ),
        _kind("slow", "answers later", SLOWER, delay_ms=float, delay=str),
        _kind("fail", "answers with an error status", ERROR_ANSWERS, fail_rate=float, fail_status=int),
        _kind("unhealthy", "the health endpoint fails", FAILS_HEALTH, HEALTHY_AGAIN, HEALTH_ONLY),
        FaultKind("scale", "the cluster grows or shrinks", frozenset({CLUSTER_CHANGE}), {"to": int}, False),
        FaultKind("reload", "the balancer reloads its config", frozenset({CLUSTER_CHANGE}), {}, False),
    )
}


def fault_kind(name: str) -> FaultKind:
    return FAULTS[name]
