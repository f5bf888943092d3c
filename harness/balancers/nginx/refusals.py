"""What a user's nginx config may hold that open source nginx 1.22 cannot run: refused at its
own file and line, with what to change."""

from __future__ import annotations

from harness.balancers.nginx.parse import Directive, origin, walk
from harness.errors import ConfigError

# NGINX Plus only: open source nginx refuses them, so a config using them cannot run here.
PLUS_ONLY = {
    "health_check": "active health checks are NGINX Plus: drop it, passive checks (max_fails) still apply",
    "sticky": "sticky sessions are NGINX Plus: use ip_hash or hash $cookie_NAME instead",
    "ntlm": "ntlm is NGINX Plus: drop it",
    "queue": "queue is NGINX Plus: drop it, or use max_conns alone",
    "zone_sync": "zone_sync is NGINX Plus: drop it",
}


def refuse_what_cannot_run(tree: list[Directive]) -> None:
    """ConfigError at the first directive open source nginx 1.22 cannot run, saying what to change."""
    for directive in walk(tree):
        name = directive["directive"]
        if name in PLUS_ONLY:
            raise ConfigError(f"{origin(directive)}: {name}: {PLUS_ONLY[name]}")
        if name == "server" and "block" not in directive and "resolve" in directive["args"]:
            raise ConfigError(
                f"{origin(directive)}: server {directive['args'][0]} resolve: nginx 1.22 resolves names only "
                "at start; drop `resolve` (the harness gives each service fixed loopback addresses)"
            )
