"""The report's pictures, drawn with matplotlib as inline SVG so the report opens offline."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no screen: draw to memory

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Beyond this many instances a picture names none of them: a thousand labels or legend
# entries are unreadable, and laying them out costs matplotlib tens of seconds.
NAMED_INSTANCES = 24


@dataclass(frozen=True)
class Marker:
    at_s: float  # seconds from the start of the load
    label: str
    colour: str


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the XML prologue is not allowed inside HTML


def _markers(axes: Axes, markers: Sequence[Marker]) -> None:
    for marker in markers:
        axes.axvline(marker.at_s, color=marker.colour, linestyle="--", linewidth=1)
        axes.annotate(
            marker.label, (marker.at_s, 1.0), xycoords=("data", "axes fraction"), rotation=90,
            fontsize=7, va="top", ha="right", color=marker.colour,
        )  # fmt: skip


def shares(instances: Sequence[dict[str, object]]) -> str:
    """Each instance's share of requests as a bar, the expected share as a line across it."""
    figure, axes = plt.subplots(figsize=(7, 2.8))
    names = [str(row["instance"]) for row in instances]
    values = [float(row["share"]) * 100 for row in instances]  # type: ignore[arg-type]
    positions = list(range(len(names)))
    axes.bar(positions, values, color="#4c78a8", label="observed")
    expected = [
        (index, float(row["expected_share"]) * 100)  # type: ignore[arg-type]
        for index, row in enumerate(instances)
        if row.get("expected_share") is not None
    ]
    if expected:
        at, shares_expected = zip(*expected, strict=True)
        starts, ends = [index - 0.4 for index in at], [index + 0.4 for index in at]
        axes.hlines(shares_expected, starts, ends, colors="#e45756", linewidth=2, label="expected")
    axes.legend(fontsize=8)
    axes.set_ylabel("share of requests (%)")
    if len(names) <= NAMED_INSTANCES:
        axes.set_xticks(positions, names)
        axes.tick_params(axis="x", labelsize=8, rotation=20)
    else:
        axes.set_xlabel(f"{len(names)} instances, in the order of the config ({names[0]} to {names[-1]})")
    return _svg(figure)


def latency(over_time: pd.DataFrame, markers: Sequence[Marker]) -> str:
    """p50, p95 and p99 per second, with the faults and rollbacks marked."""
    figure, axes = plt.subplots(figsize=(9, 3))
    for column, colour in (("p50", "#4c78a8"), ("p95", "#f58518"), ("p99", "#e45756")):
        axes.plot(over_time["t"], over_time[column], label=column, color=colour, linewidth=1.2)
    axes.set_xlabel("seconds from the start of the load")
    axes.set_ylabel("latency (ms)")
    _markers(axes, markers)
    axes.legend(fontsize=8, loc="upper left")
    return _svg(figure)


def failover(per_interval: pd.DataFrame, instance: str, markers: Sequence[Marker]) -> str:
    """Requests the faulty instance served and client errors, per 100 ms, with the fault's moments."""
    figure, axes = plt.subplots(figsize=(9, 2.8))
    axes.plot(per_interval["t"], per_interval["served"], label=f"requests served by {instance}", color="#4c78a8")
    axes.plot(per_interval["t"], per_interval["errors"], label="client errors (all instances)", color="#e45756")
    axes.set_xlabel("seconds from the start of the load")
    axes.set_ylabel("per 100 ms")
    _markers(axes, markers)
    axes.legend(fontsize=8, loc="upper left")
    return _svg(figure)


def picks(per_second: pd.DataFrame) -> str:
    """Each instance's picks per second as the balancer made them (solid) and as the model
    predicted them (dashed, where it names one instance), with the disagreements marked."""
    figure, axes = plt.subplots(figsize=(9, 2.8))
    if per_second["instance"].nunique() > NAMED_INSTANCES:
        return _picks_spread(figure, axes, per_second)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, instance in enumerate(sorted(per_second["instance"].unique())):
        mine = per_second[per_second["instance"] == instance]
        colour = colours[index % len(colours)]
        axes.plot(mine["second"], mine["observed"], color=colour, linewidth=1.2, label=instance)
        if mine["predicted"].notna().any():
            axes.plot(mine["second"], mine["predicted"], color=colour, linewidth=1, linestyle="--")
    wrong = per_second[per_second["disagreements"] > 0]
    if not wrong.empty:
        axes.scatter(wrong["second"], wrong["disagreements"], color="#e45756", s=14, label="disagreements", zorder=3)
    axes.set_xlabel("seconds from the first pick (solid: observed, dashed: predicted)")
    axes.set_ylabel("picks per second")
    axes.legend(fontsize=7, loc="upper right", ncols=3)
    return _svg(figure)


def _picks_spread(figure: Figure, axes: Axes, per_second: pd.DataFrame) -> str:
    """Picks per second over many instances: the fewest, the median and the most any one got,
    as the balancer made them (solid) and as the model predicted them (dashed)."""
    by_second = per_second.groupby("second")
    for column, style in (("observed", "-"), ("predicted", "--")):
        if not per_second[column].notna().any():
            continue
        spread = by_second[column].agg(["min", "median", "max"])
        for statistic, colour in (("min", "#4c78a8"), ("median", "#54a24b"), ("max", "#f58518")):
            label = f"{statistic} over {per_second['instance'].nunique()} instances" if style == "-" else None
            axes.plot(spread.index, spread[statistic], color=colour, linestyle=style, linewidth=1.1, label=label)
    wrong = by_second["disagreements"].sum()
    wrong = wrong[wrong > 0]
    if not wrong.empty:
        axes.scatter(wrong.index, wrong.to_numpy(), color="#e45756", s=14, label="disagreements", zorder=3)
    axes.set_xlabel("seconds from the first pick (solid: observed, dashed: predicted)")
    axes.set_ylabel("picks per second, one instance")
    axes.legend(fontsize=7, loc="upper right", ncols=2)
    return _svg(figure)


def sessions(samples: pd.DataFrame, load_start: float, markers: Sequence[Marker]) -> str:
    """Open sessions per instance as the instances reported them, with the faults marked; the
    consistent snapshots the session checks judged as dots; the clients' view of the same
    sessions (from their records), where the run has it, dashed."""
    figure, axes = plt.subplots(figsize=(9, 2.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (instance, mine) in enumerate(samples.groupby("instance", sort=True)):
        colour = colours[index % len(colours)]
        seconds = mine["time"] - load_start
        axes.step(seconds, mine["open"], where="post", color=colour, linewidth=1.2, label=str(instance))
        kept = mine[mine["consistent"].astype(bool)]
        axes.scatter(kept["time"] - load_start, kept["open"], color=colour, s=5, zorder=3)
        if "clients_open" in mine:
            axes.step(seconds, mine["clients_open"], where="post", color=colour, linewidth=0.8, linestyle="--")
    axes.set_xlabel("seconds from the start of the load (dots: consistent snapshots; dashed: the clients' view)")
    axes.set_ylabel("open sessions")
    _markers(axes, markers)
    if samples["instance"].nunique() <= NAMED_INSTANCES:
        axes.legend(fontsize=7, loc="upper right", ncols=3)
    return _svg(figure)
