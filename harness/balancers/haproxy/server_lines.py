"""A backend's ``server`` lines as the run has them: each line (or ``server-template``) expanded
into one line per instance of its service, with the options that would reach outside the run
dropped and each change listed with the user's line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from harness.balancers.haproxy.parse import Line, Server, origin_of, parse_server
from harness.balancers.origin import Origin
from harness.errors import ConfigError
from harness.runtimes.base import Instance

# Server options that make HAProxy speak TLS to the instances, which serve plain HTTP here.
SERVER_TLS_OPTIONS = {
    "ssl": 0,
    "check-ssl": 0,
    "verify": 1,
    "ca-file": 1,
    "crl-file": 1,
    "crt": 1,
    "sni": 1,
    "alpn": 1,
    "check-sni": 1,
    "check-alpn": 1,
    "ssl-min-ver": 1,
    "ssl-max-ver": 1,
    "ciphers": 1,
    "ciphersuites": 1,
    "no-ssl-reuse": 0,
    "force-tlsv12": 0,
    "force-tlsv13": 0,
}
SERVER_DNS_OPTIONS = {"resolvers": 1, "resolve-prefer": 1, "resolve-net": 1, "resolve-opts": 1, "init-addr": 1}

# Server options that reach somewhere else than the instance (another address, a proxy) or tie
# the line to one server (a fixed id, another server's state): dropped when it becomes several.
_SERVER_ELSEWHERE_OPTIONS = {"addr": 1, "agent-addr": 1, "socks4": 1, "track": 1, "id": 1}


def expand_servers(
    lines: Iterable[list[str]],
    by_service: Mapping[str, list[Instance]],
    weights: Mapping[str, int] | None,
    backend: str,
    rewrites: list[tuple[Origin | None, str]],
) -> Iterable[list[str]]:
    names: dict[str, list[str]] = {}  # a server line's name -> its instances' names
    expanded: list[list[str]] = []  # in the user's order: default-server applies to the servers after it
    for line in lines:
        if line[0] not in {"server", "server-template"}:
            expanded.append(line)
            continue
        server = parse_server(line)
        instances = by_service.get(server.service)
        if not instances:
            known = ", ".join(sorted(by_service)) or "none"
            raise ConfigError(
                f"{server.origin or 'config'}: backend {backend} names service {server.service!r}, which has no "
                f"instance (services started: {known})"
            )
        names[server.name] = [instance.name for instance in instances]
        plain = _server_params(server, instances, rewrites)
        for number, instance in enumerate(instances, start=1):
            params = list(plain)
            if weights and instance.name in weights:
                params = [*without(params, {"weight": 1}), "weight", str(weights[instance.name])]
            if "cookie" in params[:-1] and len(instances) > 1:
                # Each instance its own cookie value, or every sticky client would name the first.
                index = params.index("cookie") + 1
                params[index] = f"{params[index]}.{number}"
            expanded.append(Line.at(["server", instance.name, instance.address, *params], server.origin))
    for line in expanded:
        if line[:1] == ["use-server"] and len(line) > 1 and line[1] in names:
            # `use-server app1`: the first instance of what was server app1.
            rewrites.append((origin_of(line), f"use-server {line[1]}: its first instance, {names[line[1]][0]}"))
            line = Line.at([line[0], names[line[1]][0], *line[2:]], origin_of(line))
        yield line


def _server_params(
    server: Server, instances: Sequence[Instance], rewrites: list[tuple[Origin | None, str]]
) -> list[str]:
    """A server line's options as each of its instances gets them."""
    params = without(list(server.params), SERVER_DNS_OPTIONS)
    if len(params) != len(server.params):
        rewrites.append((server.origin, f"server {server.name}: DNS resolution dropped, the instances have addresses"))
    elsewhere = without(params, _SERVER_ELSEWHERE_OPTIONS)
    if elsewhere != params:
        dropped = sorted(set(params) & set(_SERVER_ELSEWHERE_OPTIONS))
        rewrites.append((server.origin, f"server {server.name}: {', '.join(dropped)} dropped (one per instance here)"))
        params = elsewhere
    plain = without(params, SERVER_TLS_OPTIONS)
    ca_file = next((i.tls.ca_file for i in instances if i.tls), None)
    if plain != params and ca_file is not None and all(i.tls for i in instances):
        # The instances serve TLS: verified against the run's CA when the line verifies, no client certificate.
        verifies = "verify" in params and params[params.index("verify") + 1 :][:1] != ["none"]
        plain = [*without(params, {"ca-file": 1, "crt": 1}), *(["ca-file", ca_file] if verifies else [])]
        rewrites.append((server.origin, f"server {server.name}: TLS kept, the instances serve it"))
    elif plain != params:
        rewrites.append((server.origin, f"server {server.name}: TLS to the instances dropped, they serve plain HTTP"))
    return plain


def without(params: list[str], options: Mapping[str, int]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(params):
        if params[index] in options:
            index += 1 + options[params[index]]
            continue
        kept.append(params[index])
        index += 1
    return kept
