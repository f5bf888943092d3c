"""Configs and scenarios several live tests share."""

from pathlib import Path

from harness.algorithms import ALGORITHMS, shipped_config


def kill_scenario(tmp_path: Path, duration: float = 5) -> Path:
    """Kill instance 2 at 1.5 s, start it again 1.5 s later; ``duration`` seconds of load in all."""
    path = tmp_path / "kill.toml"
    path.write_text(
        f'duration = {duration}\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'
    )
    return path


def short_fail_timeout_nginx(tmp_path: Path) -> Path:
    """The shipped nginx health-checks config with fail_timeout=2s, so recovery fits in a short run."""
    path = tmp_path / "nginx.conf"
    path.write_text(
        shipped_config(ALGORITHMS["health_checks"]).read_text().replace("fail_timeout=30s", "fail_timeout=2s")
    )
    return path
