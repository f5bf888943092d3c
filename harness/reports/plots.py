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
    axes.bar(names, values, color="#4c78a8", label="observed")
    for index, row in enumerate(instances):
        if row.get("expected_share") is not None:
            expected = float(row["expected_share"]) * 100  # type: ignore[arg-type]
            axes.hlines(expected, index - 0.4, index + 0.4, colors="#e45756", linewidth=2, label="expected")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=8)
    axes.set_ylabel("share of requests (%)")
    axes.tick_params(axis="x", labelsize=8, rotation=20)
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
    """One strip per instance: the picks the balancer made each second, the ones the model
    predicted (where it names one instance), and the disagreements."""
    instances = sorted(per_second["instance"].unique())
    figure, rows = plt.subplots(len(instances), 1, figsize=(9, 0.9 * len(instances) + 0.6), sharex=True, squeeze=False)
    for axes, instance in zip(rows[:, 0], instances, strict=True):
        mine = per_second[per_second["instance"] == instance]
        axes.plot(mine["second"], mine["observed"], color="#4c78a8", linewidth=1.2, label="observed")
        if mine["predicted"].notna().any():
            axes.plot(
                mine["second"], mine["predicted"], color="#f58518", linewidth=1, linestyle="--", label="predicted"
            )
        wrong = mine[mine["disagreements"] > 0]
        axes.scatter(wrong["second"], wrong["disagreements"], color="#e45756", s=12, label="disagreements", zorder=3)
        axes.set_ylabel(instance, rotation=0, ha="right", fontsize=7)
        axes.tick_params(labelsize=7)
    rows[0, 0].legend(fontsize=7, loc="upper right", ncols=3)
    rows[-1, 0].set_xlabel("seconds from the first pick (picks per second)")
    return _svg(figure)
