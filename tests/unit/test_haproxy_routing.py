"""Which backend a HAProxy frontend sends a request to, and the route the load takes to the one under test."""

from pathlib import Path

import pytest

from harness.balancers.haproxy.config import load_config
from harness.balancers.haproxy.parse import Section, quote, split_line
from harness.balancers.haproxy.render import RenderSettings, plan_listens, render_config
from harness.balancers.haproxy.routing import Request, parse_condition, parse_test, switching_of
from harness.balancers.tls import RunCertificates
from harness.errors import ConfigError
from harness.runtimes.base import Instance

CONFIGS = Path(__file__).parents[1] / "configs" / "haproxy"


def frontend(*lines: str) -> Section:
    return Section("frontend", "web", [line.split() for line in lines])


@pytest.mark.parametrize(
    ("acl", "request_", "expected"),
    [
        ("path_beg /api/", Request(None, "/api/count"), True),
        ("path_beg /api/", Request(None, "/apix"), False),
        ("path -m beg /v1", Request(None, "/v1/x"), True),
        ("path_dir api", Request(None, "/v1/api/x"), True),
        ("path_end .php", Request(None, "/index.php"), True),
        ("path_reg ^/v[0-9]+/", Request(None, "/v2/x"), True),
        ("hdr(host) -i Shop.Example.com", Request("shop.example.com", "/"), True),
        ("hdr(host) -i shop.example.com", Request(None, "/"), False),
        ("hdr_dom(host) -i example.com", Request("www.example.com", "/"), True),
        ("req.hdr(host),lower -m end .example.com", Request("a.example.com", "/"), True),
        ("ssl_fc", Request(None, "/", tls=True), True),
        ("src 10.0.0.0/8", Request(None, "/"), None),  # not a fetch the harness knows
        ("path_beg -f /etc/haproxy/paths.lst", Request(None, "/"), None),  # values from a file
    ],
)
def test_an_acl_test_matches_as_haproxy_matches_it(acl: str, request_: Request, expected: bool | None) -> None:
    assert parse_test(acl.split()).holds(request_) is expected


def test_conditions_and_or_negation_and_unless() -> None:
    acls = {"api": [parse_test(["path_beg", "/api/"])], "shop": [parse_test(["hdr(host)", "shop"])]}
    both = parse_condition(["if", "api", "shop"])
    either = parse_condition(["if", "api", "||", "shop"])
    unless = parse_condition(["unless", "{", "ssl_fc", "}"])
    assert both and either and unless
    assert both.holds(Request("shop", "/api/x"), acls) and not both.holds(Request(None, "/api/x"), acls)
    assert either.holds(Request(None, "/api/x"), acls) and either.holds(Request("shop", "/"), acls)
    assert unless.holds(Request(None, "/"), acls) and not unless.holds(Request(None, "/", tls=True), acls)
    negated = parse_condition(["if", "!api"])
    assert negated and negated.holds(Request(None, "/"), acls) and not negated.holds(Request(None, "/api/"), acls)


def test_redirects_come_before_backend_rules_and_the_first_rule_wins() -> None:
    switching = switching_of(
        frontend(
            "use_backend api if { path_beg /api/ }",
            "use_backend v1 if { path_beg /api/v1/ }",
            "http-request redirect scheme https if !{ ssl_fc } { path_beg /login }",
            "default_backend site",
        )
    )
    assert switching.decide(Request(None, "/api/v1/x"))[1] == "api"
    assert switching.decide(Request(None, "/"))[1] == "site"
    rule, backend, _ = switching.decide(Request(None, "/login"))
    assert backend is None and rule is not None and rule.kind == "redirect"
    assert switching.decide(Request(None, "/login", tls=True))[1] == "site"


def test_the_default_route_is_what_slash_reaches_with_the_load_under_a_prefix_of_its_own() -> None:
    config = load_config(CONFIGS / "two-backends.cfg")
    assert config.route is not None
    assert (config.under_test.name, config.route.request.path, config.route.prefix) == ("site", "/", "/lbh/")
    assert (config.services, config.side_services, config.routed_groups()) == (
        ["site-a", "site-b"], ["api"], ["site", "api"],
    )  # fmt: skip
    api = load_config(CONFIGS / "two-backends.cfg", backend="api")
    assert api.route is not None and (api.route.prefix, api.inferred_algorithm()) == ("/api/", "least_conn")
    picked = load_config(CONFIGS / "two-backends.cfg", route="/api/v2/")
    assert picked.under_test.name == "api" and picked.route and picked.route.prefix == "/api/v2/"


def test_a_tls_frontend_behind_a_redirect_is_the_route_with_its_host() -> None:
    config = load_config(CONFIGS / "tls-redirect.cfg")
    route = config.route
    assert route is not None and (route.bind.key, route.bind.ssl, route.request.host) == (
        "https-in :443", True, "shop.example.com",
    )  # fmt: skip
    assert config.under_test.name == "shop" and config.side_services == ["admin"]


def test_refusals_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--backend nope: .* it has admin, shop"):
        load_config(CONFIGS / "tls-redirect.cfg", backend="nope")
    with pytest.raises(ConfigError, match=r"--route elsewhere\.example/: no frontend"):
        load_config(CONFIGS / "tls-redirect.cfg", route="elsewhere.example/")
    path = tmp_path / "h.cfg"
    path.write_text("frontend f\n    bind :80\n    use_backend b if { src 10.0.0.1 }\nbackend b\n    server a a:1\n")
    with pytest.raises(ConfigError, match=r"h.cfg:4: no frontend of h.cfg sends a request the harness can tell"):
        load_config(path)


def test_rendering_keeps_every_bind_on_loopback_with_certificates_and_nothing_outside(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tls-redirect.cfg")
    instances = [
        Instance(f"{s}-1", s, f"127.0.1.{i}", 8000 + i, 9000 + i, i)
        for i, s in enumerate(["shop-a", "shop-b", "admin"])
    ]
    listens = plan_listens(config, "127.0.0.1:18443", iter(["127.0.0.1:18080"]))
    assert listens == {"https-in :443": "127.0.0.1:18443", "http-in :80": "127.0.0.1:18080"}
    certificates = RunCertificates(tmp_path / "tls")
    rendered = render_config(
        config, instances, RenderSettings(tmp_path, "127.0.0.1:18443", listens=listens, certificates=certificates)
    )
    binds = [line.split() for line in rendered.text.splitlines() if line.strip().startswith("bind ")]
    assert binds[0] == ["bind", "127.0.0.1:18080"]
    assert binds[1][:5] == ["bind", "127.0.0.1:18443", "ssl", "alpn", "h2,http/1.1"]
    assert binds[1][5] == "crt" and binds[1][6].startswith(str(tmp_path / "tls"))
    for outside in ("8.8.8.8", "resolvers dns", "/etc/haproxy", "verify none", "chroot", "init-addr"):
        assert outside not in rendered.text, outside
    text = rendered.rewrites_text()
    assert "tls-redirect.cfg:12: resolvers dns left out" in text and "tls-redirect.cfg:39: server shop-1: TLS" in text
    # HAProxy's complaint about a rendered line is told at the user's line.
    line = next(n for n, o in rendered.origins.items() if o.line == 39)
    message = rendered.in_users_terms(f"parsing [{tmp_path}/haproxy.cfg:{line}] : oops", tmp_path / "haproxy.cfg")
    assert message == "parsing [tls-redirect.cfg:39] : oops"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            r"http-request deny if { path_reg \.(git|env)$ }",
            ["http-request", "deny", "if", "{", "path_reg", r"\.(git|env)$", "}"],
        ),
        (r"tcp-check send PING\r\n", ["tcp-check", "send", "PING\r\n"]),
        ('timeout client "${APP_TIMEOUT}"', ["timeout", "client", "${APP_TIMEOUT}"]),
        ("acl a path_beg /x#comment", ["acl", "a", "path_beg", "/x"]),
        ("http-request set-header X 'a b\\c'", ["http-request", "set-header", "X", "a b\\c"]),
        (r'http-request set-header X "a\"b\\c"', ["http-request", "set-header", "X", 'a"b\\c']),
    ],
)
def test_lines_split_as_haproxy_splits_them_and_render_back_the_same(line: str, words: list[str]) -> None:
    assert split_line(line) == words
    assert split_line(" ".join(quote(word) for word in words)) == words


def test_rules_apply_in_haproxys_order_and_a_dynamic_backend_falls_through(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    mode http\n    default_backend app\n"
        "frontend web\n    bind :80\n    bind :443 ssl crt /etc/ssl/site.pem\n"
        "    redirect prefix https://www.example.com code 301 if { hdr(host) -i example.com }\n"
        "    http-request redirect scheme https code 308 unless { ssl_fc }\n"
        "    http-request deny if { path_beg /admin }\n"
        "    use_backend %[req.hdr(host),lower,map(hosts.map)]\n"
        "backend app\n    server a app:80\n"
    )
    (tmp_path / "hosts.map").write_text("shop.example.com app\n")
    config = load_config(path)
    assert config.route is not None and config.route.bind.ssl
    switching = config.switching(config.frontends()[0])
    rule, backend, _ = switching.decide(Request("example.com", "/x"))
    assert backend is None and rule is not None and "308" in rule.target  # http-request rules come first
    stopped, backend, _ = switching.decide(Request(None, "/admin", tls=True))
    assert backend is None and stopped is not None and stopped.kind == "stop"
    _, backend, unknown = switching.decide(Request(None, "/", tls=True))
    assert backend == "app" and [r.target for r in unknown] == ["%[req.hdr(host),lower,map(hosts.map)]"]


def test_a_file_the_config_needs_is_read_beside_it_or_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    mode http\nfrontend web\n    bind :80\n    acl bad src -f /etc/haproxy/block.lst\n"
        "    http-request deny if bad\n    default_backend app\nbackend app\n    server a app:80\n"
    )
    with pytest.raises(ConfigError, match=r"h.cfg:5: /etc/haproxy/block.lst is not here: put a copy at .*block.lst"):
        load_config(path)
    (tmp_path / "block.lst").write_text("10.0.0.0/8\n")
    config = load_config(path)
    rendered = render_config(
        config, [Instance("app-1", "app", "127.0.1.1", 8001, 9001, 1)], RenderSettings(tmp_path, "127.0.0.1:1")
    )
    assert f"-f {tmp_path / 'block.lst'}" in rendered.text


def test_tcp_proxies_log_nothing_and_servers_expand_without_what_ties_them_to_one(tmp_path: Path) -> None:
    path = tmp_path / "h.cfg"
    path.write_text(
        "defaults\n    mode http\nfrontend db\n    mode tcp\n    bind :5432\n    default_backend pg\n"
        "frontend web\n    bind :80\n    default_backend app\n"
        "backend app\n    cookie SRV insert\n    use-server a1 if { req.hdr(x-pin) -m found }\n"
        "    server a1 app:80 cookie a1 id 7 addr 10.0.0.9 check\n    server-template b 3 b.svc:80 check\n"
        "backend pg\n    mode tcp\n    server p1 pg:5432\n"
    )
    config = load_config(path)
    assert config.under_test.name == "app" and config.services == ["app", "b.svc"]
    instances = [Instance(f"app-{n}", "app", "127.0.1.1", 8000 + n, 9000 + n, n) for n in (1, 2)]
    instances += [
        Instance("b.svc", "b.svc", "127.0.1.2", 8010, 9010, 3),
        Instance("pg", "pg", "127.0.1.3", 8020, 9020, 4),
    ]
    text = render_config(config, instances, RenderSettings(tmp_path, "127.0.0.1:1")).text
    db = text.split("frontend db")[1].split("frontend web")[0]
    assert "no log" in db and "log-format" not in db and "log-format" in text.split("frontend web")[1]
    assert (
        "server app-1 127.0.1.1:8001 cookie a1.1 check" in text
        and "server app-2 127.0.1.1:8002 cookie a1.2 check" in text
    )
    assert "use-server app-1 if" in text and "server b.svc 127.0.1.2:8010 check" in text
    assert " id 7" not in text and "10.0.0.9" not in text
