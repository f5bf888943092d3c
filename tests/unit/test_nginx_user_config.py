"""A user's config as it is: includes, several servers, listens, TLS, routes (no nginx needed)."""

from dataclasses import replace
from pathlib import Path

import crossplane
import pytest

from harness.balancers.nginx.config import load_config
from harness.balancers.nginx.health import passive_checks
from harness.balancers.nginx.messages import in_users_terms
from harness.balancers.nginx.render import (
    OUTSIDE_THE_RUN,
    RenderSettings,
    listen_keys,
    plan_listens,
    render_config,
)
from harness.balancers.tls import RunCertificates
from harness.cli.up_command import curl_command
from harness.errors import ConfigError, SpecError
from harness.load.route import FixedRoute
from harness.plan import prepare, upstreams_to_judge
from harness.runtimes.base import Instance, InstanceTls
from harness.spec import BenchSpec

PROD_TLS = Path(__file__).parents[1] / "configs" / "prod-tls" / "nginx.conf"


def instances(service: str, count: int, first: int = 1) -> list[Instance]:
    return [
        Instance(f"{service}-{i}", service, f"127.0.1.{i}", 8000 + i, 9000 + i, 100 + i)
        for i in range(first, first + count)
    ]


def files(tmp_path: Path, tree: dict[str, str]) -> Path:
    for name, text in tree.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / next(iter(tree))


def parsed(text: str, tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "rendered.conf"
    path.write_text(text)
    return crossplane.parse(str(path), single=True)["config"][0]["parsed"]  # type: ignore[no-any-return]


def directives(text: str, tmp_path: Path, name: str) -> list[list[str]]:
    found: list[list[str]] = []

    def walk(block: list[dict[str, object]]) -> None:
        for directive in block:
            if directive["directive"] == name:
                found.append(list(directive["args"]))  # type: ignore[call-overload]
            walk(directive.get("block", []))  # type: ignore[arg-type]

    walk(parsed(text, tmp_path))
    return found


def run_settings(tmp_path: Path, config_listens: dict[str, str] | None = None, tls: bool = False) -> RenderSettings:
    return RenderSettings(
        run_dir=tmp_path / "run",
        listen="127.0.0.1:18080",
        workers=1,
        listens=config_listens or {},
        certificates=RunCertificates(tmp_path / "run" / "tls") if tls else None,
    )


def test_upstreams_and_servers_in_an_included_conf_d_are_read(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n}\n",
            "conf.d/b.conf": "server { listen 80; location / { proxy_pass http://app; } }\n",
            "conf.d/a.conf": "upstream app {\n    least_conn;\n    server app:3000;\n}\n",
        },
    )
    config = load_config(main)
    assert [u.name for u in config.upstreams] == ["app"]
    assert str(config.under_test.origin) == "conf.d/a.conf:1"
    assert config.inferred_algorithm() == "least_conn"
    assert config.route is not None and str(config.route.origin) == "conf.d/b.conf:1"
    assert any("read from conf.d/a.conf" in note for _, note in config.notes)


def test_a_missing_include_is_refused_at_its_file_and_line(tmp_path: Path) -> None:
    main = files(tmp_path, {"nginx.conf": "events {}\nhttp {\n  include sites/app.conf;\n}\n"})
    with pytest.raises(ConfigError, match=r"nginx.conf:3: include sites/app.conf: no such file"):
        load_config(main)


def test_a_syntax_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "events {}\nhttp { include conf.d/*.conf; }\n",
            "conf.d/app.conf": "upstream app {\n server a:1\n",
        },
    )
    with pytest.raises(ConfigError, match=r"conf.d/app.conf:\d"):
        load_config(main)


def test_an_include_cycle_is_refused(tmp_path: Path) -> None:
    main = files(tmp_path, {"nginx.conf": "include nginx.conf;\n"})
    with pytest.raises(ConfigError, match="nests more than 10 deep"):
        load_config(main)


def test_absolute_includes_outside_the_folder_are_left_out_and_said(tmp_path: Path) -> None:
    config = load_config(PROD_TLS)
    notes = [f"{where}: {what}" for where, what in config.notes]
    assert "nginx.conf:5: include /etc/nginx/modules-enabled/*.conf: not in ., left out" in notes
    assert "conf.d/app.conf:21: include /etc/letsencrypt/options-ssl-nginx.conf: not in ., left out" in notes


def test_the_route_of_slash_picks_the_upstream_under_test(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream static { server cdn:80; }\nupstream app { server web:3000; server web2:3000; }\n"
            "server { listen 80; location /static/ { proxy_pass http://static; }\n"
            "location / { proxy_pass http://app; } }\n"
        },
    )
    config = load_config(main)
    assert config.under_test.name == "app"
    assert config.services == ["web", "web2"] and config.side_services == ["cdn"]
    assert load_config(main, upstream="static").services == ["cdn"]
    chosen = load_config(main, route="/static/logo.png")
    assert chosen.under_test.name == "static" and chosen.route is not None and chosen.route.path_prefix == "/static/"


def test_an_unknown_upstream_or_route_is_refused_with_what_there_is(tmp_path: Path) -> None:
    main = files(
        tmp_path, {"nginx.conf": "upstream app { server a:1; }\nserver { location /api/ { proxy_pass http://app; } }\n"}
    )
    with pytest.raises(ConfigError, match="no such upstream; it has app"):
        load_config(main, upstream="nope")
    with pytest.raises(ConfigError, match=r"--route other.example/x: no location .*routes: \(default\)/api/ -> app"):
        load_config(main, route="other.example/x")


def test_fastcgi_to_an_upstream_and_plus_only_directives_are_refused_at_their_line(tmp_path: Path) -> None:
    php = files(
        tmp_path,
        {
            "nginx.conf": "upstream php { server fpm:9000; }\n"
            "server {\n location ~ \\.php$ {\n  fastcgi_pass php;\n }\n}\n"
        },
    )
    with pytest.raises(ConfigError, match=r"nginx.conf:4: fastcgi_pass php: the instances speak HTTP"):
        load_config(php)
    plus = tmp_path / "plus.conf"
    plus.write_text("upstream app {\n server a:1;\n sticky cookie srv_id;\n}\n")
    with pytest.raises(ConfigError, match=r"plus.conf:3: sticky: .*use ip_hash or hash"):
        load_config(plus)


def test_an_ipv4_ipv6_pair_is_one_loopback_socket_and_default_server_is_kept_once(tmp_path: Path) -> None:
    config = load_config(PROD_TLS)
    assert listen_keys(config) == ["80", "443"]
    sockets = {"80": "127.0.0.1:18080", "443": "127.0.0.1:18443"}
    rendered = render_config(config, instances("app", 2), run_settings(tmp_path, sockets, tls=True))
    listens = directives(rendered.text, tmp_path, "listen")
    assert listens == [["127.0.0.1:18080", "default_server"], ["127.0.0.1:18443", "ssl", "http2", "default_server"]]
    said = rendered.rewrites_text()
    assert "conf.d/app.conf:9: listen [::]:80 default_server: served by the same 127.0.0.1:18080" in said


def test_tls_servers_get_the_runs_certificates_and_nothing_points_outside_the_run(tmp_path: Path) -> None:
    config = load_config(PROD_TLS)
    settings = run_settings(tmp_path, {"80": "127.0.0.1:18080", "443": "127.0.0.1:18443"}, tls=True)
    text = render_config(config, instances("app", 2), settings).text
    certificates = directives(text, tmp_path, "ssl_certificate")
    assert len(certificates) == 1 and certificates[0][0].startswith(str(tmp_path / "run" / "tls"))
    for forbidden in ("/etc/letsencrypt", "/var/log", "pid /run/nginx.pid", "www-data", "ssl_dhparam"):
        assert forbidden not in text
    assert [args for args in directives(text, tmp_path, "include")] == [["/etc/nginx/mime.types"]]
    assert (tmp_path / "run" / "tls" / "ca.pem").is_file()


def test_without_certificates_ssl_is_dropped_and_said(tmp_path: Path) -> None:
    rendered = render_config(load_config(PROD_TLS), instances("app", 1), run_settings(tmp_path))
    assert "ssl" not in [p for args in directives(rendered.text, tmp_path, "listen") for p in args]
    assert "ssl dropped, this run serves the server without TLS" in rendered.rewrites_text()


def test_cache_paths_move_into_the_run_and_outside_hosts_answer_502(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "proxy_cache_path /var/cache/nginx keys_zone=c:10m;\nupstream app { server a:1; }\n"
            "server { location / { proxy_pass http://app; }\n"
            "location /ext/ { proxy_pass https://api.example.com/v1/; } }\n"
        },
    )
    rendered = render_config(load_config(main), instances("a", 1), run_settings(tmp_path))
    assert directives(rendered.text, tmp_path, "proxy_cache_path")[0][0] == str(tmp_path / "run" / "cache" / "1")
    assert ["http://app"] in directives(rendered.text, tmp_path, "proxy_pass")
    assert [f"https://{OUTSIDE_THE_RUN}/v1/"] in directives(rendered.text, tmp_path, "proxy_pass")
    assert "proxy_pass https://api.example.com/v1/: outside the run, answers 502 here" in rendered.rewrites_text()


def test_nginx_messages_are_told_at_the_users_file_and_line(tmp_path: Path) -> None:
    config = load_config(PROD_TLS)
    rendered = render_config(config, instances("app", 1), run_settings(tmp_path))
    target = tmp_path / "run" / "nginx.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered.text)
    line = next(i for i, text in enumerate(rendered.text.splitlines(), 1) if "proxy_http_version" in text)
    message = f'[emerg] invalid value "x" in {target}:{line}'
    assert in_users_terms(message, target, rendered.tree) == '[emerg] invalid value "x" in conf.d/app.conf:26'


def test_unix_socket_servers_are_served_by_instances_and_said(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server unix:/run/app.sock fail_timeout=0; }\n"
            "server { location / { proxy_pass http://app; } }\n"
        },
    )
    config = load_config(main)
    assert config.services == ["app"]
    rendered = render_config(config, instances("app", 2), run_settings(tmp_path))
    servers = [args for args in directives(rendered.text, tmp_path, "server") if args]
    assert servers == [["127.0.1.1:8001", "fail_timeout=0"], ["127.0.1.2:8002", "fail_timeout=0"]]
    assert "server unix:/run/app.sock: served by instances on loopback TCP" in rendered.rewrites_text()


@pytest.mark.parametrize(
    ("prefix", "path", "sent"),
    [
        ("/", "/api/count", "/api/count"),
        ("/api/", "/api/count", "/api/count"),
        ("/app", "/api/count", "/app/api/count"),
    ],
)
def test_a_route_puts_the_harness_paths_under_its_location(prefix: str, path: str, sent: str) -> None:
    assert FixedRoute("http://127.0.0.1:1", prefix=prefix).path_for(path) == sent


def test_claims_say_what_the_upstream_asks_for_and_where(tmp_path: Path) -> None:
    claims = load_config(PROD_TLS).claims()
    assert claims.startswith("claims inferred from upstream `app` in conf.d/app.conf:1: least_conn, keepalive 16")
    assert "on route example.com/ -> app (conf.d/app.conf:25)" in claims


def test_https_to_the_instances_is_kept_when_they_serve_tls_else_passed_as_http(
    tmp_path: Path,
) -> None:
    main = files(
        tmp_path, {"nginx.conf": "upstream app { server a:1; }\nserver { location / { proxy_pass https://app; } }\n"}
    )
    rendered = render_config(load_config(main), instances("a", 1), run_settings(tmp_path))
    assert directives(rendered.text, tmp_path, "proxy_pass") == [["http://app"]]
    assert "proxy_pass https://app: the instances speak plain HTTP" in rendered.rewrites_text()
    served = [replace(i, tls=InstanceTls("/run/c.pem", "/run/k.pem", "/run/ca.pem")) for i in instances("a", 1)]
    verified = files(
        tmp_path / "v",
        {
            "nginx.conf": "upstream app { server a:1; }\nserver { location / { proxy_pass https://app;\n"
            "proxy_ssl_verify on; proxy_ssl_trusted_certificate /etc/ca.pem; proxy_ssl_certificate /etc/c.pem; } }\n"
        },
    )
    kept = render_config(load_config(verified), served, run_settings(tmp_path))
    assert directives(kept.text, tmp_path, "proxy_pass") == [["https://app"]]
    assert directives(kept.text, tmp_path, "proxy_ssl_trusted_certificate") == [["/run/ca.pem"]]
    assert directives(kept.text, tmp_path, "proxy_ssl_certificate") == []
    plain = render_config(load_config(verified), instances("a", 1), run_settings(tmp_path))
    assert directives(plain.text, tmp_path, "proxy_ssl_trusted_certificate") == []


def test_a_grpc_pass_route_reaches_the_instances_grpc_port_over_h2c(tmp_path: Path) -> None:
    grpc = tmp_path / "grpc.conf"
    grpc.write_text(
        "upstream g { server a:50051; }\nupstream h { server b:1; }\n"
        "server {\n listen 80 http2;\n location / {\n  grpc_pass grpc://g;\n }\n}\n"
        "server {\n listen 8080;\n location / { proxy_pass http://h; }\n}\n"
    )
    config = load_config(grpc)
    assert config.speaks_grpc and config.grpc_services == ["a"] and config.tls_services == []
    served = [replace(i, grpc_port=7000 + n) for n, i in enumerate(instances("a", 2))]
    rendered = render_config(config, [*served, *instances("b", 1)], run_settings(tmp_path))
    # gRPC without TLS is h2c: the gRPC server's listen keeps http2.
    listens = directives(rendered.text, tmp_path, "listen")
    assert [args[1:] for args in listens] == [["http2"], []], listens
    servers = directives(rendered.text, tmp_path, "server")
    upstream_servers = [s[0] for s in servers if s]  # the upstreams' server lines, not the server blocks
    assert upstream_servers == [f"{i.host}:{i.grpc_port}" for i in served] + [instances("b", 1)[0].address]
    http_only = tmp_path / "http.conf"
    http_only.write_text("upstream h { server b:1; }\nserver { location / { proxy_pass http://h; } }\n")
    assert not load_config(http_only).speaks_grpc and load_config(http_only).grpc_services == []


def test_one_host_on_several_ports_is_one_service_per_port(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server 127.0.0.1:8001 weight=3; server 127.0.0.1:8002;\n"
            "server 127.0.0.1:8003 backup; }\nserver { location / { proxy_pass http://app; } }\n"
        },
    )
    config = load_config(main)
    assert config.services == ["127.0.0.1-8001", "127.0.0.1-8002", "127.0.0.1-8003"]
    assert config.server_claims().backup == ("127.0.0.1-8003",)
    spread = [Instance(s, s, f"127.0.1.{i}", 8000 + i, 9000 + i, i) for i, s in enumerate(config.services, 1)]
    servers = [
        a for a in directives(render_config(config, spread, run_settings(tmp_path)).text, tmp_path, "server") if a
    ]
    assert servers == [["127.0.1.1:8001", "weight=3"], ["127.0.1.2:8002"], ["127.0.1.3:8003", "backup"]]


def test_a_nested_location_moves_the_load_of_its_parent(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server a:1; }\nupstream api { server b:1; }\n"
            "server { location / { proxy_pass http://app; location /api/ { proxy_pass http://api; } } }\n"
        },
    )
    route = load_config(main).route
    assert route is not None and route.upstream == "app" and route.path_prefix == "/lbh/"


def test_a_catch_all_first_server_does_not_take_the_load(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server a:1; }\nserver { listen 80 default_server; return 444; }\n"
            "server { listen 80; server_name .example.com; location / { proxy_pass http://app; } }\n"
        },
    )
    route = load_config(main).route
    assert route is not None and route.server.host == "example.com"


def test_a_route_given_by_host_and_path_is_the_location_nginx_would_pick(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server a:1; }\nupstream api { server b:1; }\n"
            "server { server_name example.com;\n"
            "location /reports/ { proxy_read_timeout 300s; proxy_next_upstream off; proxy_pass http://app; }\n"
            "location /api/ { proxy_pass http://api; }\n"
            "location / { proxy_read_timeout 5s; proxy_pass http://app; } }\n"
        },
    )
    assert load_config(main, route="example.com/").under_test.name == "app"
    assert load_config(main, route="example.com/api/v1").under_test.name == "api"
    checks = passive_checks(load_config(main))
    assert (checks.read_timeout, checks.next_upstream) == (5.0, ("error", "timeout"))


def test_without_tls_http2_goes_with_ssl_and_ssl_on_is_tls_too(tmp_path: Path) -> None:
    rendered = render_config(load_config(PROD_TLS), instances("app", 1), run_settings(tmp_path))
    assert "http2" not in [p for args in directives(rendered.text, tmp_path, "listen") for p in args]
    main = files(
        tmp_path,
        {
            "old.conf": "upstream app { server a:1; }\nserver { listen 443; ssl on; server_name x.example;\n"
            "location / { proxy_pass http://app; } }\n"
        },
    )
    config = load_config(main)
    assert config.route is not None and config.route.server.ssl
    text = render_config(config, instances("a", 1), run_settings(tmp_path, tls=True)).text
    assert len(directives(text, tmp_path, "ssl_certificate")) == 1


def test_stream_blocks_are_left_out_and_said(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "events {}\n"
            "stream { upstream db { server pg:5432; } server { listen 5432; proxy_pass db; } }\n"
            "http { upstream app { server a:1; } server { location / { proxy_pass http://app; } } }\n"
        },
    )
    config = load_config(main)
    assert [u.name for u in config.upstreams] == ["app"] and config.side_services == []
    rendered = render_config(config, instances("a", 1), run_settings(tmp_path))
    assert directives(rendered.text, tmp_path, "stream") == [] and "stream: left out" in rendered.rewrites_text()


def test_a_name_no_certificate_can_carry_is_left_off_it(tmp_path: Path) -> None:
    chain, _ = RunCertificates(tmp_path).issue(["api_gateway.local", "api.example"])
    assert chain.is_file()


def test_a_relative_mime_types_comes_from_this_machine(tmp_path: Path) -> None:
    main = files(tmp_path, {"nginx.conf": "events {}\nhttp { include mime.types; upstream app { server a:1; } }\n"})
    if not Path("/etc/nginx/mime.types").is_file():
        with pytest.raises(ConfigError, match=r"include mime\.types: no such file"):
            load_config(main)
        return
    text = render_config(load_config(main), instances("a", 1), run_settings(tmp_path)).text
    assert directives(text, tmp_path, "include") == [["/etc/nginx/mime.types"]]


def test_a_literal_host_before_a_variable_is_still_outside_the_run(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server a:1; }\nserver { location / { proxy_pass http://app; }\n"
            "location /x/ { proxy_pass http://10.0.0.5:8080$request_uri; } }\n"
        },
    )
    text = render_config(load_config(main), instances("a", 1), run_settings(tmp_path)).text
    assert [f"http://{OUTSIDE_THE_RUN}$request_uri"] in directives(text, tmp_path, "proxy_pass")


def test_upstream_all_is_for_bench_only(tmp_path: Path) -> None:
    spec = BenchSpec(algorithms=(), config=Path(__file__).parents[1] / "configs" / "two-upstreams" / "nginx.conf")
    assert upstreams_to_judge(replace(spec, upstream="all")) == ["api", "web"]
    with pytest.raises(SpecError, match="--upstream all judges each upstream in turn"):
        prepare(replace(spec, upstream="all"), command="up")


def test_the_routes_listen_gets_the_balancers_port_even_without_a_listen(tmp_path: Path) -> None:
    main = files(
        tmp_path,
        {
            "nginx.conf": "upstream app { server a:1; }\nserver { listen 8080; location / { return 200; } }\n"
            "server { server_name _; location / { proxy_pass http://app; } }\n"
        },
    )
    spare = iter(["127.0.0.1:2", "127.0.0.1:3"])
    assert plan_listens(load_config(main), "127.0.0.1:1", lambda: next(spare)) == {
        "80": "127.0.0.1:1",
        "8080": "127.0.0.1:2",
    }


def test_harness_up_says_the_curl_that_reaches_the_route() -> None:
    route = FixedRoute("https://127.0.0.1:4", host="example.com", prefix="/shop", ca_file=Path("/run/ca.pem"))
    assert (
        curl_command(route) == "curl -s --cacert /run/ca.pem -H 'Host: example.com' https://127.0.0.1:4/shop/api/count"
    )
