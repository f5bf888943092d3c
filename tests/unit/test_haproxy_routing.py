"""Which backend a HAProxy frontend sends a request to, and the route the load takes to the one under test."""

from pathlib import Path

import pytest

from harness.balancers.haproxy.config import load_config
from harness.balancers.haproxy.parse import Section
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
