"""``report.html``: one self-contained page per run directory, every number from its files."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness.reports import latency as latency_stats
from harness.reports import plots
from harness.reports.rundata import AlgorithmRunData, load_run
from harness.results.statuses import failed_status

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOAD_MODEL = {
    "closed": "closed model: each Locust user sends its next request when the last one answered, so a slow "
    "balancer also sends fewer requests and its latency hides behind the requests it never had to serve "
    "(coordinated omission)",
    "open": "open model: requests arrive at a fixed rate whatever the answers, so slowness shows as latency",
    "wrk": "wrk: a closed model on many kept-alive connections, for capacity; no per-request records, so the "
    "latency percentiles are wrk's own and the time lines are empty",
}


@dataclass
class AlgorithmSection:
    """What the report shows of one algorithm's run."""

    data: AlgorithmRunData
    percentiles: dict[str, float | None]
    shares_svg: str
    latency_svg: str
    failover: list[dict[str, Any]]  # each row of failover.csv with its picture
    picks_svg: str = ""  # the replay's strips per instance
    sessions_svg: str = ""  # open sessions per instance over time, under a session workload


def _markers(data: AlgorithmRunData, step: int | None = None) -> list[plots.Marker]:
    """Every fault and rollback of the run (or of one step), in seconds from the start of the load."""
    start = data.load_start
    instance_of = {int(e["step"]): str(e.get("instance", "")) for e in data.events("fault") if "step" in e}
    markers = []
    for event in data.events("fault", "rollback"):
        if step is not None and event.get("step") != step:
            continue
        at = float(event.get("at", event["time"])) - start
        label = f"{event.get('kind', '')} {instance_of.get(int(event.get('step', 0)), '')}".strip()
        if event["event"] == "fault":
            markers.append(plots.Marker(at, label, "#d62728"))
        else:
            markers.append(plots.Marker(at, f"rollback {label}", "#2ca02c"))
    return markers


def _failover_rows(data: AlgorithmRunData) -> list[dict[str, Any]]:
    if data.failover.empty:
        return []
    start, requests = data.load_start, data.requests
    interval = ((requests["time"] - start) // 0.1).astype(int)
    failed = failed_status(requests["status"])
    faults = {int(event["step"]): event for event in data.events("fault")}
    rows: list[dict[str, Any]] = []
    for row in data.failover.to_dict("records"):
        instance = str(row["instance"])
        per_interval = pd.DataFrame(
            {
                "served": (requests["instance"] == instance).groupby(interval).sum(),
                "errors": failed.groupby(interval).sum(),
            }
        ).reset_index(names="i")
        per_interval["t"] = per_interval["i"] * 0.1
        fault = faults.get(int(row["step"]))
        markers = _markers(data, int(row["step"]))
        if fault is not None and pd.notna(row.get("time_to_eject_s")):
            at = float(fault["at"]) - start + float(row["time_to_eject_s"])
            markers.append(plots.Marker(at, "out of rotation", "#9467bd"))
        rows.append(
            {
                **{str(key): ("" if pd.isna(value) else value) for key, value in row.items()},
                "svg": plots.failover(per_interval, instance, markers),
            }
        )
    return rows


def section(data: AlgorithmRunData) -> AlgorithmSection:
    instances = data.summary.get("instances", [])
    over_time = latency_stats.over_time(data.requests)
    return AlgorithmSection(
        data=data,
        percentiles=latency_stats.percentiles(data.requests["latency_ms"]) if not data.requests.empty else {},
        shares_svg=plots.shares(instances) if instances else "",
        latency_svg=plots.latency(over_time, _markers(data)) if not over_time.empty else "",
        failover=_failover_rows(data),
        picks_svg=plots.picks(data.picks) if not data.picks.empty else "",
        sessions_svg=plots.sessions(data.sessions, data.load_start, _markers(data)) if not data.sessions.empty else "",
    )


def render(run_dir: Path) -> str:
    runs = load_run(run_dir)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template("report.html.j2").render(
        title=run_dir.name,
        run_dir=str(run_dir),
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        sections=[section(data) for data in runs],
        load_models=LOAD_MODEL,
        precision=latency_stats.PRECISION,
        machine=f"{platform.node()} ({platform.system()} {platform.release()}, {platform.machine()})",
    )


def write_report(run_dir: Path) -> Path:
    """Writes ``run_dir/report.html`` (atomically) and returns its path."""
    path = run_dir / "report.html"
    partial = path.with_suffix(".html.partial")
    partial.write_text(render(run_dir))
    partial.replace(path)
    return path
