"""A scenario file (TOML), read and checked as a whole before anything starts::

name = "failover"
description = "Kill one of three instances under load, then bring it back."
algorithm = "health_checks"      # used when --algo is not given
duration = 20                    # seconds of load in all, warm-up included
warmup = 3                       # seconds of steady load before the first fault
method = "GET"                   # the load's requests: GET (default) or POST
request_path = "/api/count"      # e.g. "/api/slow?ms=200" to keep requests in flight

[[faults]]
at = 3                           # seconds after load starts
kind = "kill"                    # kill stop hang restart slow fail unhealthy blackhole scale reload
instance = 2                     # 1-based position, or an instance name
rollback_after = 4               # seconds after `at`; left out: at the end of the load
# parameters of the kind, e.g. delay_ms = 500 (slow), fail_rate = 0.5 (fail)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.algorithms import ALGORITHM_NAMES
from harness.errors import SpecError
from harness.faults.kinds import FAULT_KINDS, Fault, make_fault
from harness.infra import infra_files, infra_path
from harness.load.workload import Workload


@dataclass(frozen=True)
class FaultStep:
    at: float
    instance: int | str
    fault: Fault
    rollback_at: float | None  # None: at the end of the load
    parameters: dict[str, Any] = field(default_factory=dict)  # as written in the file

    @property
    def kind(self) -> str:
        return self.fault.kind


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    algorithm: str | None
    duration: float
    warmup: float
    steps: tuple[FaultStep, ...]
    path: Path
    method: str = "GET"  # what the load sends during the scenario
    request_path: str = "/api/count"
    workload: Workload | None = None  # long-lived sessions instead of requests; None: --workload's

    def instance_name(self, step: FaultStep, names: list[str]) -> str:
        """The name of the instance a step acts on; SpecError when the cluster has no such instance."""
        if isinstance(step.instance, int):
            if not 1 <= step.instance <= len(names):
                raise SpecError(
                    f"{self.path}: fault at {step.at:g} s names instance {step.instance}, "
                    f"but the run has {len(names)} instances"
                )
            return names[step.instance - 1]
        if step.instance not in names:
            raise SpecError(f"{self.path}: no instance named {step.instance!r}; instances: {', '.join(names)}")
        return step.instance


def scenario_path(name_or_path: str) -> Path:
    """A shipped scenario by name (``infra/scenarios/NAME.toml``) or a path to a user's file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return infra_path("scenarios", f"{name_or_path}.toml")


def shipped_scenarios() -> list[str]:
    return [path.stem for path in infra_files("scenarios", "*.toml")]


def load_scenario(name_or_path: str) -> Scenario:
    """Reads and validates a scenario; SpecError names the file and the field that is wrong."""
    path = scenario_path(name_or_path)
    if not path.is_file():
        known = ", ".join(shipped_scenarios())
        raise SpecError(f"scenario not found: {name_or_path} (shipped scenarios: {known})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    duration = _number(data, "duration", path, default=None)
    warmup = _number(data, "warmup", path, default=2.0) or 0.0
    if duration is None or duration <= 0:
        raise SpecError(f"{path}: duration must be a number of seconds above 0")
    algorithm = data.get("algorithm")
    if algorithm is not None and algorithm not in ALGORITHM_NAMES:
        raise SpecError(f"{path}: unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHM_NAMES)}")
    steps = tuple(_step(raw, index, duration, path) for index, raw in enumerate(data.get("faults", []), start=1))
    method = str(data.get("method", "GET")).upper()
    if method not in {"GET", "POST"}:
        raise SpecError(f"{path}: method must be GET or POST, got {method!r}")
    request_path = str(data.get("request_path", "/api/count"))
    if not request_path.startswith("/") or any(c.isspace() for c in request_path):
        raise SpecError(f"{path}: request_path must be a path starting with /, got {request_path!r}")
    workload = _workload(data.get("workload"), path)
    return Scenario(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        algorithm=algorithm,
        duration=duration,
        warmup=warmup,
        steps=tuple(sorted(steps, key=lambda step: step.at)),
        path=path,
        method=method,
        request_path=request_path,
        workload=workload,
    )


WORKLOAD_KEYS = {"kind": "kind", "hold": "hold", "durations": "durations", "every": "every", "share": "session_share"}


def _workload(raw: object, path: Path) -> Workload | None:
    """The scenario's ``[workload]`` table: ``kind`` (websocket, sse, stream, upload, mixed, grpc), ``hold``,
    ``durations``, ``every``, ``share``, as --workload and the --session-* options take them."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SpecError(f'{path}: workload must be a table ([workload] with kind = "websocket", ...)')
    unknown = sorted(set(raw) - set(WORKLOAD_KEYS))
    if unknown:
        raise SpecError(f"{path}: [workload] has no {', '.join(unknown)}; it takes {', '.join(WORKLOAD_KEYS)}")
    try:
        return Workload(**{WORKLOAD_KEYS[key]: value for key, value in raw.items()}).validate()
    except SpecError as exc:
        raise SpecError(f"{path}: [workload]: {exc}") from exc
    except TypeError as exc:  # a number where text belongs, or the other way round
        raise SpecError(f"{path}: [workload]: {exc}") from exc


def _number(data: dict[str, Any], key: str, path: Path, default: float | None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SpecError(f"{path}: {key} must be a number of seconds, got {value!r}")
    return float(value)


def _step(raw: dict[str, Any], index: int, duration: float, path: Path) -> FaultStep:
    where = f"{path} fault {index}"
    raw = dict(raw)
    at = _number(raw, "at", path, default=None)
    if at is None or not 0 <= at < duration:
        raise SpecError(f"{where}: at must be a time inside the run (0 to {duration:g} s), got {raw.get('at')!r}")
    after = _number(raw, "rollback_after", path, default=None)
    if after is not None and (after <= 0 or at + after > duration):
        raise SpecError(f"{where}: rollback_after={after:g} s puts the rollback outside the {duration:g} s run")
    instance = raw.pop("instance", 1)
    if not isinstance(instance, int | str) or isinstance(instance, bool):
        raise SpecError(f"{where}: instance must be a position (1, 2, ...) or a name")
    kind = raw.pop("kind", None)
    if kind is None:
        raise SpecError(f"{where}: no kind; name one of {', '.join(FAULT_KINDS)}")
    for key in ("at", "rollback_after"):
        raw.pop(key, None)
    fault = make_fault(str(kind), raw, where)
    rollback_at = None if after is None else at + after
    return FaultStep(at=at, instance=instance, fault=fault, rollback_at=rollback_at, parameters=raw)
