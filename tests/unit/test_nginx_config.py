"""Parsing a user's config and rendering the one nginx runs (no nginx needed)."""

from pathlib import Path

import crossplane
import pytest

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.render import RenderSettings, render
from harness.errors import ConfigError
from harness.runtimes.base import Instance


def instances(service: str, count: int, first: int = 1) -> list[Instance]:
    return [
        Instance(f"{service}-{i}", service, f"127.0.1.{i}", 8000 + i, 9000 + i, 100 + i)
        for i in range(first, first + count)
    ]


def settings(tmp_path: Path, **overrides: object) -> RenderSettings:
    values: dict[str, object] = {"run_dir": tmp_path, "listen": "127.0.0.1:18080", "workers": 1}
    values.update(overrides)
    return RenderSettings(**values)  # type: ignore[arg-type]


def upstream_servers(text: str, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "rendered.conf"
    path.write_text(text)
    tree = crossplane.parse(str(path), single=True)["config"][0]["parsed"]
    http = next(d for d in tree if d["directive"] == "http")
    upstream = next(d for d in http["block"] if d["directive"] == "upstream")
    return [d["args"] for d in upstream["block"] if d["directive"] == "server"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.conf"
    path.write_text(text)
    return path


def test_a_service_expands_into_every_instance_keeping_its_parameters(tmp_path: Path) -> None:
    config = load_config(shipped_config(ALGORITHMS["health_checks"]))
    text = render(config, instances("api-gateway", 3), settings(tmp_path))
    assert upstream_servers(text, tmp_path) == [
        [f"127.0.1.{i}:{8000 + i}", "max_fails=3", "fail_timeout=30s"] for i in (1, 2, 3)
    ]


def test_weighted_services_keep_their_weights(tmp_path: Path) -> None:
    config = load_config(shipped_config(ALGORITHMS["weighted"]))
    assert config.services == ["api-gateway-1", "api-gateway-2"]
    ones = [Instance("api-gateway-1", "api-gateway-1", "127.0.1.1", 8001, 9001, 1)]
    twos = [Instance("api-gateway-2", "api-gateway-2", "127.0.1.2", 8002, 9002, 2)]
    text = render(config, ones + twos, settings(tmp_path))
    assert upstream_servers(text, tmp_path) == [["127.0.1.1:8001", "weight=3"], ["127.0.1.2:8002", "weight=1"]]


def test_weights_option_overrides_the_config(tmp_path: Path) -> None:
    config = load_config(shipped_config(ALGORITHMS["round_robin"]))
    weights = {"api-gateway-1": 5, "api-gateway-2": 1}
    text = render(config, instances("api-gateway", 2), settings(tmp_path, weights=weights))
    assert upstream_servers(text, tmp_path) == [["127.0.1.1:8001", "weight=5"], ["127.0.1.2:8002", "weight=1"]]


def test_backup_and_down_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "upstream u { server app:80 backup; server web:80 down; }\n"
        "server { listen 80; location / { proxy_pass http://u; } }\n",
    )
    config = load_config(path)
    text = render(config, instances("app", 1) + instances("web", 1, first=2), settings(tmp_path))
    assert upstream_servers(text, tmp_path) == [["127.0.1.1:8001", "backup"], ["127.0.1.2:8002", "down"]]


def test_a_fragment_is_wrapped_into_a_whole_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "upstream u { least_conn; server app:3000; }\nserver { listen 80; location / { proxy_pass http://u; } }\n",
    )
    config = load_config(path)
    assert config.inferred_algorithm() == "least_conn"
    text = render(config, instances("app", 2), settings(tmp_path))
    assert text.count("events") == 1 and "http {" in text


def test_the_harness_owns_paths_listen_and_workers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user www-data; worker_processes 4; pid /run/nginx.pid; events {}\n"
        "http { access_log /var/log/nginx/a.log; upstream u { server app:1; }\n"
        "server { listen 80 default_server; access_log off; location / { proxy_pass http://u; } } }\n",
    )
    text = render(load_config(path), instances("app", 1), settings(tmp_path, workers=2, zone=True))
    assert "/var/log" not in text and "/run/nginx.pid" not in text and "www-data" not in text
    assert "worker_processes 2;" in text and "worker_processes 4" not in text
    assert "listen 127.0.0.1:18080 default_server;" in text
    assert f"pid {tmp_path}/nginx.pid;" in text
    assert "zone u_zone 64k;" in text
    assert text.count("access_log") == 1


def test_an_unknown_service_is_named(tmp_path: Path) -> None:
    config = load_config(shipped_config(ALGORITHMS["round_robin"]))
    with pytest.raises(ConfigError, match="names service 'api-gateway', which has no instance"):
        render(config, instances("other", 1), settings(tmp_path))


def test_a_config_without_upstream_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no upstream block"):
        load_config(write(tmp_path, "events {} http { server { listen 80; } }\n"))


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"user.conf:2"):
        load_config(write(tmp_path, "events {}\nhttp { upstream u { server a:1 }\n"))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.conf")


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_shipped_config_infers_its_own_algorithm(name: str) -> None:
    assert load_config(shipped_config(ALGORITHMS[name])).inferred_algorithm() == name
