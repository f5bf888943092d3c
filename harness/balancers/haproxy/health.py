"""HAProxy's active health checks as the backend under test sets them, with HAProxy's defaults."""

from __future__ import annotations

from collections.abc import Sequence

from harness.balancers.haproxy.parse import Section, Server, haproxy_seconds
from harness.checks.health_models import ActiveChecks


def active_checks_of(sections: Sequence[Section], server: Server) -> ActiveChecks:
    """Reads the check settings of the backend under test, with HAProxy's defaults (inter 2s fall 3
    rise 2, retries 3): ``defaults``, then the backend, then ``default-server``, then the server line."""
    words: dict[str, str] = {"inter": "2s", "fall": "3", "rise": "2", "retries": "3"}
    redispatch = False
    http = False
    check_timeout = 0.0
    default_check = False  # `default-server check`: every server is checked
    for section in sections:
        for line in section.lines:
            if line[:2] == ["option", "httpchk"]:
                http = True
            if line[:2] == ["timeout", "check"] and len(line) > 2:
                check_timeout = haproxy_seconds(line[2])
            if line[:2] == ["option", "redispatch"]:
                redispatch = True
            if line[:3] == ["no", "option", "redispatch"]:
                redispatch = False
            if line[0] == "retries" and len(line) > 1:
                words["retries"] = line[1]
            if line[0] == "default-server":
                words.update(_pairs(line[1:]))
                default_check = default_check or "check" in line[1:]
    words.update(_pairs(list(server.params)))
    return ActiveChecks(
        enabled=default_check or server.param("check") is not None,
        inter=haproxy_seconds(words["inter"]),
        fall=int(words["fall"]),
        rise=int(words["rise"]),
        redispatch=redispatch,
        retries=int(words["retries"]),
        http=http,
        check_timeout=check_timeout,
    )


def _pairs(words: Sequence[str]) -> dict[str, str]:
    keys = {"inter", "fall", "rise"}
    return {word: words[i + 1] for i, word in enumerate(words[:-1]) if word in keys}
