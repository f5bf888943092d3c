"""A run directory read back: what one algorithm's run wrote, as DataFrames and dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import SpecError
from harness.results.store import read_records


@dataclass
class AlgorithmRunData:
    directory: Path
    summary: dict[str, Any]
    requests: pd.DataFrame
    failover: pd.DataFrame
    journal: list[dict[str, Any]]
    config_text: str
    picks: pd.DataFrame  # the replay's picks per second and instance, observed and predicted
    sessions: pd.DataFrame  # a session workload's open sessions per instance over time (sessions.csv)

    @property
    def algorithm(self) -> str:
        return str(self.summary["algorithm"])

    def events(self, *names: str) -> list[dict[str, Any]]:
        return [event for event in self.journal if event.get("event") in names]

    @property
    def load_start(self) -> float:
        return float(self.requests["time"].min()) if not self.requests.empty else 0.0


def _read_algorithm_dir(directory: Path) -> AlgorithmRunData:
    summary = json.loads((directory / "summary.json").read_text())
    requests = read_records(directory)
    failover_path = directory / "failover.csv"
    failover = pd.read_csv(failover_path) if failover_path.exists() else pd.DataFrame()
    journal_path = directory / "journal.jsonl"
    journal = [json.loads(line) for line in journal_path.read_text().splitlines()] if journal_path.exists() else []
    config = Path(str(summary.get("generated_config", "")))
    config_text = config.read_text() if config.is_file() else "(the generated config is not in the run directory)"
    picks_path = directory / "picks.csv"
    picks = pd.read_csv(picks_path) if picks_path.exists() and picks_path.stat().st_size else pd.DataFrame()
    sessions_path = directory / "sessions.csv"
    sessions = pd.read_csv(sessions_path) if sessions_path.exists() else pd.DataFrame()
    return AlgorithmRunData(directory, summary, requests, failover, journal, config_text, picks, sessions)


def load_run(path: Path) -> list[AlgorithmRunData]:
    """Every algorithm's run under ``path``: a bench run directory, or one algorithm's directory."""
    if not path.is_dir():
        raise SpecError(f"no run directory at {path}")
    if (path / "summary.json").exists() and "algorithm" in json.loads((path / "summary.json").read_text()):
        return [_read_algorithm_dir(path)]
    runs = [_read_algorithm_dir(child) for child in sorted(path.iterdir()) if (child / "summary.json").exists()]
    if not runs:
        raise SpecError(f"{path} holds no run: no summary.json of an algorithm in it or below it")
    order = (
        list(json.loads((path / "summary.json").read_text()).get("algorithms", {}))
        if (path / "summary.json").exists()
        else []
    )
    return sorted(runs, key=lambda run: order.index(run.algorithm) if run.algorithm in order else len(order))
