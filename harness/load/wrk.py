"""Capacity load with wrk: numbers Locust cannot reach on a small machine, still per instance.

wrk runs its own Lua script (``wrk_counts.lua``) that counts the ``X-Instance`` header of
every response per thread and prints the sums when wrk is done. There is no per-request
record: what a run gets is the counts, the statuses, wrk's request rate and its latency
percentiles. Each response passes through Lua, which costs wrk some of its speed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ToolMissingError
from harness.tools import find_program

SCRIPT = Path(__file__).resolve().parent / "wrk_counts.lua"


@dataclass
class WrkResult:
    requests: int = 0
    duration_s: float = 0.0
    socket_errors: int = 0
    per_instance: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)  # wrk's own p50, p90, p99

    @property
    def requests_per_s(self) -> float:
        return round(self.requests / self.duration_s, 1) if self.duration_s else 0.0

    @property
    def failed(self) -> int:
        """Answers other than 2xx, and requests that got no answer."""
        bad = sum(count for status, count in self.statuses.items() if not status.startswith("2"))
        return bad + self.socket_errors


def wrk_binary() -> str:
    found = find_program("wrk")
    if found is None:
        raise ToolMissingError("wrk is not installed: apt-get install wrk (make setup installs it)")
    return found


def parse(output: str) -> WrkResult:
    result = WrkResult()
    for line in output.splitlines():
        fields = line.split("\t")
        if fields[0] == "harness-instance" and len(fields) == 3 and fields[1] != "-":
            result.per_instance[fields[1]] = int(fields[2])
        elif fields[0] == "harness-status" and len(fields) == 3:
            result.statuses[fields[1]] = int(fields[2])
        elif fields[0] == "harness-summary" and len(fields) == 4:
            result.requests, result.socket_errors = int(fields[1]), int(fields[3])
            result.duration_s = int(fields[2]) / 1_000_000
        elif fields[0] == "harness-latency" and len(fields) == 3:
            result.latency_ms[f"p{fields[1]}"] = int(fields[2]) / 1000
    return result


def run_wrk(
    url: str, path: str, connections: int, duration: float, threads: int = 2, headers: Mapping[str, str] | None = None
) -> WrkResult:
    """wrk against ``url + path`` for ``duration`` seconds; its exit and output are checked."""
    argv = [
        wrk_binary(), f"-t{threads}", f"-c{max(connections, threads)}", f"-d{max(round(duration), 1)}s",
        "--timeout", "10s", "-s", str(SCRIPT),
        *(arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")), url + path,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)
