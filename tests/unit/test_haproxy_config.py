"""Parsing a user's HAProxy config and rendering the one HAProxy runs (no HAProxy needed)."""

from pathlib import Path

import pytest

from harness.balancers.haproxy.config import active_checks, load_config
from harness.balancers.haproxy.parse import haproxy_seconds, quote
from harness.balancers.haproxy.render import LOG_FORMAT, RenderSettings, render
from harness.errors import ConfigError
from harness.infra import shipped_dir
from harness.runtimes.base import Instance

SHIPPED = {
    "haproxy-round-robin.cfg": "round_robin",
    "haproxy-least-conn.cfg": "least_conn",
    "haproxy-source.cfg": "ip_hash",
    "haproxy-consistent-hash.cfg": "ip_hash",
    "haproxy-weighted.cfg": "weighted",
    "haproxy-health-checks.cfg": "health_checks",
    "haproxy-health-checks-no-redispatch.cfg": "health_checks",
}


def instances(service: str, count: int) -> list[Instance]:
    return [Instance(f"{service}-{i}", service, f"127.0.1.{i}", 8000 + i, 9000 + i, i) for i in range(1, count + 1)]


@pytest.mark.parametrize(("name", "algorithm"), sorted(SHIPPED.items()))
def test_each_shipped_config_infers_its_algorithm(name: str, algorithm: str) -> None:
    assert load_config(shipped_dir() / "haproxy" / name).inferred_algorithm() == algorithm


def test_servers_expand_per_instance_keeping_parameters(tmp_path: Path) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-health-checks.cfg")
    text = render(config, instances("api-gateway", 3), RenderSettings(tmp_path, "127.0.0.1:18000"))
    assert "    server api-gateway-2 127.0.1.2:8002 check\n" in text
    assert "    bind 127.0.0.1:18000\n" in text
    assert "stats socket abns@lb-harness level admin" in text
    assert f"log-format {quote(LOG_FORMAT)}" in text and r"%Ts\t%ms" in text
    assert "option redispatch" in text and "default-server inter 500ms fall 2 rise 2" in text


def test_weights_override(tmp_path: Path) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-weighted.cfg")
    ones = [Instance("api-gateway-1", "api-gateway-1", "127.0.1.1", 8001, 9001, 1)]
    twos = [Instance("api-gateway-2", "api-gateway-2", "127.0.1.2", 8002, 9002, 2)]
    text = render(config, ones + twos, RenderSettings(tmp_path, "127.0.0.1:1", weights={"api-gateway-2": 5}))
    assert "server api-gateway-1 127.0.1.1:8001 weight 3" in text
    assert "server api-gateway-2 127.0.1.2:8002 weight 5" in text


def test_the_harness_owns_logs_daemon_and_sockets(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "global\n    daemon\n    log /dev/log local0\n    stats socket /run/haproxy/admin.sock\n    chroot /var/lib/x\n"
        "defaults\n    option httplog\n    mode http\nlisten web\n    bind *:80\n    server app app:80\n"
    )
    text = render(load_config(path), instances("app", 1), RenderSettings(tmp_path, "127.0.0.1:2"))
    assert "daemon" not in text and "/dev/log" not in text and "/run/haproxy" not in text and "chroot" not in text
    assert "option httplog" not in text and "bind 127.0.0.1:2" in text


def test_an_owned_option_is_named_by_its_position_not_its_last_word(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    mode http\n    option httplog\n    option httplog clf\n    no option dontlognull\n"
        "    option tcplog\n"
        'backend b\n    option httpchk GET /api/health "httplog"\n    server app app:80 check\n'
    )
    text = render(load_config(path), instances("app", 1), RenderSettings(tmp_path, "127.0.0.1:2"))
    options = [line.strip() for line in text.splitlines() if "option" in line.split()[:2]]
    # Expected: only the health check is left; observed: every option line of the rendered config.
    assert options == ["option httpchk GET /api/health httplog"], text


def test_an_unknown_service_is_named(tmp_path: Path) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-round-robin.cfg")
    with pytest.raises(ConfigError, match="names service 'api-gateway', which has no instance"):
        render(config, instances("other", 1), RenderSettings(tmp_path, "127.0.0.1:1"))


def test_a_config_without_servers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text("defaults\n    mode http\nfrontend f\n    bind :80\n")
    with pytest.raises(ConfigError, match="no backend with a server"):
        load_config(path)


def test_an_unclosed_quote_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text('backend b\n    server a a:1\n    http-request set-header X "oops\n')
    with pytest.raises(ConfigError, match=r"h.cfg:3"):
        load_config(path)


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("1500", 1.5), ("1m", 60.0)])
def test_haproxy_times(text: str, seconds: float) -> None:
    assert haproxy_seconds(text) == seconds


def test_active_check_settings_come_from_defaults_backend_and_server(tmp_path: Path) -> None:
    config = load_config(shipped_dir() / "haproxy" / "haproxy-health-checks.cfg")
    checks = active_checks(config)
    assert (checks.enabled, checks.inter, checks.fall, checks.rise, checks.redispatch) == (True, 0.5, 2, 2, True)
    assert checks.detect_within(unanswered=False) == 1.5 and checks.recover_within == 1.5
    assert checks.detect_within(unanswered=True) == 2.0  # each of fall=2 checks waits inter=0.5s for nothing
    assert checks.http
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    option redispatch\nbackend b\n    no option redispatch\n    server a a:1 check inter 1s fall 4\n"
    )
    checks = active_checks(load_config(path))
    assert (checks.inter, checks.fall, checks.rise, checks.redispatch) == (1.0, 4, 2, False)
    assert not active_checks(load_config(shipped_dir() / "haproxy" / "haproxy-round-robin.cfg")).enabled


def test_each_bind_gets_its_own_address_and_keeps_its_options(tmp_path: Path) -> None:
    path = tmp_path / "two.cfg"
    path.write_text(
        "defaults\n    mode http\n"
        "frontend api\n    bind :80\n    bind :81 accept-proxy\n    default_backend b\n"
        "frontend admin\n    bind :8404\n    default_backend b\n"
        "backend b\n    server api-gateway api-gateway:3000\n"
    )
    rendered = render(load_config(path), instances("api-gateway", 1), RenderSettings(tmp_path, "127.0.0.1:18080"))
    binds = [line.split()[1:] for line in rendered.splitlines() if line.strip().startswith("bind ")]
    assert binds[0] == ["127.0.0.1:18080"]  # the address clients use
    assert binds[1][1:] == ["accept-proxy"] and binds[1][0].startswith("127.0.0.1:")
    addresses = [bind[0] for bind in binds]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses), binds
