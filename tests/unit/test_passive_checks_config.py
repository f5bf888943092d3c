"""The settings the failover checks derive their expectations from, read from a config."""

from pathlib import Path

import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.health import passive_checks
from harness.balancers.nginx.units import nginx_seconds
from harness.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("500ms", 0.5), ("1m30s", 90), ("10", 10), ("2h", 7200)])
def test_nginx_times(text: str, seconds: float) -> None:
    assert nginx_seconds(text) == seconds


def test_a_bad_time_is_refused() -> None:
    with pytest.raises(ConfigError):
        nginx_seconds("soon")


def test_the_health_checks_config() -> None:
    passive = passive_checks(load_config(shipped_config(ALGORITHMS["health_checks"])))
    assert (passive.max_fails, passive.fail_timeout) == (3, 30.0)
    assert (passive.connect_timeout, passive.read_timeout) == (1.0, 5.0)
    assert passive.retries("error") and passive.retries("timeout") and not passive.retries("http_503")


def test_nginx_defaults_apply_when_nothing_is_set() -> None:
    passive = passive_checks(load_config(shipped_config(ALGORITHMS["round_robin"])))
    assert (passive.max_fails, passive.fail_timeout, passive.read_timeout) == (1, 10.0, 60.0)


def test_the_innermost_setting_wins_and_off_means_no_retry(tmp_path: Path) -> None:
    path = tmp_path / "c.conf"
    path.write_text(
        "events {} http { proxy_read_timeout 9s; upstream u { server app:1 max_fails=0; }\n"
        "server { listen 80; location /other { proxy_read_timeout 1s; }\n"
        "location / { proxy_next_upstream off; proxy_pass http://u; } } }\n"
    )
    passive = passive_checks(load_config(path))
    assert passive.read_timeout == 9.0 and passive.max_fails == 0
    assert not passive.retries("error")
