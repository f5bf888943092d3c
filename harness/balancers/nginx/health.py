"""nginx's passive health checks as the config under test sets them: max_fails and fail_timeout of its
servers, and the proxy settings (retries, timeouts) in effect where the load's ``proxy_pass`` is."""

from __future__ import annotations

from collections.abc import Callable

from harness.balancers.nginx.config import NginxConfig
from harness.balancers.nginx.parse import Directive
from harness.balancers.nginx.servers import pass_target
from harness.balancers.nginx.units import nginx_seconds
from harness.checks.health_models import PassiveChecks


def passive_checks(config: NginxConfig) -> PassiveChecks:
    """Reads max_fails/fail_timeout of the upstream under test's first server and the proxy
    settings in effect where ``proxy_pass`` sends to it (the innermost block that sets them wins)."""
    upstream = config.under_test
    server = upstream.servers[0]
    settings = {
        "proxy_next_upstream": ("error", "timeout"),
        "proxy_connect_timeout": ("60s",),
        "proxy_read_timeout": ("60s",),
    }
    route = config.route
    if route is not None and route.upstream == upstream.name:
        # The settings of the route the load takes: another location may pass to the same upstream.
        _collect_proxy_settings(config.tree, lambda d: d.get("origin") == route.origin, settings, {})
    else:
        _collect_proxy_settings(config.tree, lambda d: pass_target(d)[0] == upstream.name, settings, {})
    max_fails = server.param("max_fails")
    fail_timeout = server.param("fail_timeout")
    return PassiveChecks(
        max_fails=int(max_fails) if max_fails else 1,
        fail_timeout=nginx_seconds(fail_timeout) if fail_timeout else 10.0,
        next_upstream=tuple(settings["proxy_next_upstream"]),
        connect_timeout=nginx_seconds(settings["proxy_connect_timeout"][0]),
        read_timeout=nginx_seconds(settings["proxy_read_timeout"][0]),
        reuses_connections=upstream.has("keepalive"),
    )


def _collect_proxy_settings(
    block: list[Directive],
    is_target: Callable[[Directive], bool],
    found: dict[str, tuple[str, ...]],
    inherited: dict[str, tuple[str, ...]],
) -> bool:
    """Walks down to the block whose ``proxy_pass`` is the target; fills ``found`` with what applies there."""
    here = dict(inherited)
    for directive in block:
        if directive["directive"] in found:
            here[directive["directive"]] = tuple(directive["args"])
    for directive in block:
        if directive["directive"] == "proxy_pass" and is_target(directive):
            found.update(here)
            return True
    return any(_collect_proxy_settings(d["block"], is_target, found, here) for d in block if "block" in d)
