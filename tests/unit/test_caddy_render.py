"""The Caddy config the run renders keeps every log it reads in one file of the run."""

from pathlib import Path

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.caddy.config import load_config
from harness.balancers.caddy.render import RenderSettings, render
from harness.runtimes.base import Instance


def test_every_log_file_is_in_the_run_and_never_rolled(tmp_path: Path) -> None:
    # Caddy rolls a log file at 100 MB by default; a 40 s failover scenario wrote 110 MB of round trips,
    # and the attempts before the roll were lost to the analysis.
    config = load_config(shipped_config(ALGORITHMS["health_checks"], "caddy"))
    instances = [Instance(f"api-gateway-{n}", "api-gateway", f"127.0.1.{n}", 4000 + n, 5000 + n, 0) for n in (1, 2)]
    listens = {name: "127.0.0.1:8080" for name in config.adapted["apps"]["http"]["servers"]}
    rendered, _ = render(config, instances, RenderSettings(tmp_path, listens, "127.0.0.1:2019"))
    writers = [log["writer"] for log in rendered["logging"]["logs"].values() if "writer" in log]
    assert len(writers) == 2
    for writer in writers:
        assert Path(writer["filename"]).parent == tmp_path and writer["roll"] is False, writer
