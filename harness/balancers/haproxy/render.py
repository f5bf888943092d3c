"""The HAProxy config the harness runs, rendered from the user's: servers expanded into the
run's instances, every bind on loopback, logs, sockets and certificates the run's own, and
everything that would reach outside the run (DNS resolvers, peers, mail alerts, programs)
left out, each change listed with the user's file and line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends.instance import by_service as instances_by_service
from harness.balancers.haproxy.config import Bind, HaproxyConfig
from harness.balancers.haproxy.parse import Line, origin_of, quote
from harness.balancers.haproxy.server_lines import SERVER_DNS_OPTIONS, SERVER_TLS_OPTIONS, expand_servers, without
from harness.balancers.origin import Origin
from harness.balancers.tls import RunCertificates
from harness.net import LOOPBACK, free_port
from harness.runtimes.base import Instance

# The fields of each log line, tab-separated; the parser reads them by position.
LOG_FORMAT = "%Ts\t%ms\t%ci\t%HM\t%HU\t%ST\t%si:%sp\t%rc\t%Tr\t%Ta\t%pid\t%s\t%Tc\t%Th\t%Ti"
# Directives the harness owns: wherever the user put them, they are replaced.
_OWNED = {"log", "log-format"}
# Process-level settings the harness owns in `global` only (`user` and `group` mean
# something else in a userlist).
_OWNED_IN_GLOBAL = {"daemon", "pidfile", "chroot", "user", "group", "uid", "gid", "stats", "master-worker"}
_OWNED_OPTIONS = {"httplog", "tcplog", "dontlognull"}
# Sections that talk to the world outside the run: DNS servers, peers, SMTP, programs, log servers.
_LEFT_OUT_SECTIONS = {
    "resolvers": "its nameservers are outside the run; servers keep the addresses the harness gives them",
    "peers": "its peers are other HAProxy machines",
    "mailers": "it sends mail",
    "program": "it starts a program",
    "log-forward": "it listens for logs",
    "ring": "it forwards logs to servers outside the run",
}
# Global settings that name files or machine resources outside the run.
_LEFT_OUT_GLOBAL = {"lua-prepend-path", "ssl-dh-param-file", "server-state-file",
                    "server-state-base", "localpeer", "cpu-map", "ca-base", "crt-base", "ssl-engine"}  # fmt: skip
# Lines in a proxy section that reach outside the run.
_LEFT_OUT_PROXY = {"email-alert", "server-state-file-name"}
# Bind options that name the user's files or the machine's interfaces, and each one's value count.
_BIND_FILE_OPTIONS = {
    "crt": 1,
    "crt-list": 1,
    "ca-file": 1,
    "crl-file": 1,
    "ca-verify-file": 1,
    "verify": 1,
    "ca-sign-file": 1,
    "ca-sign-pass": 1,
    "namespace": 1,
    "interface": 1,
    "ocsp-update": 1,
}
# strict-sni: the load sends no server name, so a handshake would fail.
_BIND_DROPPED_FLAGS = {"v4v6", "v6only", "transparent", "generate-certificates", "quic-force-retry", "strict-sni"}
_HAPROXY_LINE = re.compile(r"\[([^\]\s]+):(\d+)\]")


@dataclass(frozen=True)
class RenderSettings:
    run_dir: Path
    listen: str  # the route's bind: where clients send the load
    weights: Mapping[str, int] | None = None
    # An abstract-namespace socket: no file to clean up, and no limit from the length of
    # the run directory's path (a UNIX socket path holds at most 107 bytes).
    stats_socket: str = "lb-harness"
    listens: Mapping[str, str] = field(default_factory=dict)  # every other bind's key and its loopback socket
    certificates: RunCertificates | None = None


@dataclass
class Rendered:
    text: str
    origins: dict[int, Origin]  # a rendered line's number and where the user wrote it
    rewrites: list[tuple[Origin | None, str]] = field(default_factory=list)

    def rewrites_text(self) -> str:
        return "".join(f"{where or 'harness'}: {what}\n" for where, what in self.rewrites)

    def in_users_terms(self, message: str, rendered_file: Path) -> str:
        """HAProxy's message with ``[RENDERED:LINE]`` told as the user's file and line."""

        def told(match: re.Match[str]) -> str:
            if Path(match.group(1)).name != rendered_file.name:
                return match.group(0)
            where = self.origins.get(int(match.group(2)))
            return f"[{where}]" if where else f"[the rendered {rendered_file.name}:{match.group(2)}]"

        return _HAPROXY_LINE.sub(told, message)


def plan_listens(config: HaproxyConfig, primary: str, spare: Iterable[str] | None = None) -> dict[str, str]:
    """Each bind's key and its loopback socket: the route's bind on ``primary``, the others on free ports."""
    route = config.route
    planned: dict[str, str] = {}
    if route is not None:
        planned[route.bind.key] = primary
    others = iter(spare) if spare is not None else None
    for bind in config.binds():
        if bind.on_a_socket_file or bind.key in planned:
            continue
        if not planned and route is None:
            planned[bind.key] = primary  # no route (a config without use_backend): its first bind
            continue
        planned[bind.key] = next(others) if others is not None else f"{LOOPBACK}:{free_port()}"
    return planned


def render(config: HaproxyConfig, instances: Sequence[Instance], settings: RenderSettings) -> str:
    return render_config(config, instances, settings).text


def render_config(config: HaproxyConfig, instances: Sequence[Instance], settings: RenderSettings) -> Rendered:
    """The config HAProxy runs: services expanded into ``instances``, socket and logs in the run.

    Raises ConfigError when a server names a service that has no instance.
    """
    by_service = instances_by_service(instances)
    listens = dict(settings.listens) or plan_listens(config, settings.listen)
    if config.route is not None:
        listens[config.route.bind.key] = settings.listen
    rewrites: list[tuple[Origin | None, str]] = []
    sections: list[tuple[str, str, list[list[str]], Origin | None]] = []
    kinds = {section.kind for section in config.sections}
    if "global" not in kinds:
        sections.append(("global", "", _global_lines(settings), None))
    for section in config.sections:
        if section.kind in _LEFT_OUT_SECTIONS:
            rewrites.append(
                (section.origin, f"{section.kind} {section.name} left out: {_LEFT_OUT_SECTIONS[section.kind]}")
            )
            continue
        lines = [line for line in section.lines if not _owned(line)]
        rewrites += [
            (origin_of(line), f"{' '.join(line[:2])} replaced: the harness writes its own log to read")
            for line in section.lines
            if _owned(line)
        ]
        if section.kind == "global":
            lines = _global_lines(settings) + [_with_files(line, config.files) for line in _global(lines, rewrites)]
        else:
            lines = list(_proxy_lines(lines, rewrites, config.files))
        if section.kind == "defaults":
            lines = [["log", "global"], *lines]
        if section.kind in {"frontend", "listen"}:
            # The harness reads HTTP fields from its log; a tcp proxy has none and logs nothing here.
            logging = [["log-format", LOG_FORMAT]] if config.mode_of(section) == "http" else [["no", "log"]]
            names = config.switching(section).host_names()
            lines = logging + list(_binds(config, section.name, lines, listens, settings, names, rewrites))
        if section.kind in {"backend", "listen"}:
            lines = list(expand_servers(lines, by_service, settings.weights, section.name, rewrites))
        sections.append((section.kind, section.name, lines, section.origin))
    # HAProxy (2.6 on) makes a `default` resolvers section of /etc/resolv.conf and connects to
    # its nameservers at start, even with no server that resolves; this one keeps that on loopback.
    sections.insert(1, ("resolvers", "default", [["nameserver", "loopback", f"{LOOPBACK}:53"]], None))
    if "defaults" not in kinds:
        # After global: HAProxy copies global's loggers when it reads `log global`.
        sections.insert(2, ("defaults", "", [["log", "global"], ["mode", "http"]], None))
    return _text(sections, rewrites)


def _text(
    sections: Sequence[tuple[str, str, list[list[str]], Origin | None]], rewrites: list[tuple[Origin | None, str]]
) -> Rendered:
    out: list[str] = []
    origins: dict[int, Origin] = {}
    for kind, name, lines, where in sections:
        if where is not None:
            origins[len(out) + 1] = where
        out.append(f"{kind} {name}".rstrip())
        for line in lines:
            if (line_origin := origin_of(line)) is not None:
                origins[len(out) + 1] = line_origin
            out.append("    " + " ".join(quote(word) for word in line))
        out.append("")
    return Rendered("\n".join(out) + "\n", origins, rewrites)


def _global(lines: Iterable[list[str]], rewrites: list[tuple[Origin | None, str]]) -> Iterable[list[str]]:
    for line in lines:
        if line[0] in _OWNED_IN_GLOBAL:
            why = "the harness runs HAProxy in the foreground, as this user, with its own stats socket"
            rewrites.append((origin_of(line), f"{line[0]} dropped: {why}"))
            continue
        if line[0] in _LEFT_OUT_GLOBAL:
            rewrites.append((origin_of(line), f"{line[0]} dropped: it names files or resources outside the run"))
            continue
        yield line


def _with_files(line: list[str], files: Mapping[str, str]) -> list[str]:
    """``line`` with every file it names (an ACL's -f, a map) at where it is here."""
    if not any(written in word for word in line for written in files):
        return line
    words = [word for word in line]
    for index, word in enumerate(words):
        for written, local in files.items():
            if word == written or f"({written}" in word:
                words[index] = word.replace(written, local)
    return Line.at(words, origin_of(line))


def _proxy_lines(
    lines: Iterable[list[str]], rewrites: list[tuple[Origin | None, str]], files: Mapping[str, str]
) -> Iterable[list[str]]:
    for line in (_with_files(line, files) for line in lines):
        if line[0] in _LEFT_OUT_PROXY:
            rewrites.append((origin_of(line), f"{' '.join(line[:2])} dropped: it reaches outside the run"))
            continue
        if line[0] == "errorfile" and len(line) > 2 and not Path(line[2]).is_file():
            rewrites.append((origin_of(line), f"errorfile {line[1]} dropped: {line[2]} is not on this machine"))
            continue
        if line[0] in {"http-check", "tcp-check"} and "addr" in line[:-1]:
            # A check that connects somewhere else than the instance: to the instance here.
            rewrites.append((origin_of(line), f"{line[0]} {line[1]}: addr dropped, the check goes to the instance"))
            line = Line.at(without(line, {"addr": 1}), origin_of(line))
        if line[0] == "default-server":
            kept_words = without(without(line[1:], SERVER_DNS_OPTIONS), SERVER_TLS_OPTIONS)
            if kept_words != line[1:]:
                rewrites.append((origin_of(line), "default-server: DNS resolution and TLS to the instances dropped"))
            yield Line.at(["default-server", *kept_words], origin_of(line))
            continue
        if line[0] == "stick-table" and "peers" in line:
            index = line.index("peers")
            kept = Line.at([*line[:index], *line[index + 2 :]], origin_of(line))
            rewrites.append((origin_of(line), "stick-table: peers dropped, the table stays on this HAProxy"))
            yield kept
            continue
        yield line


def _binds(
    config: HaproxyConfig,
    frontend: str,
    lines: Iterable[list[str]],
    listens: Mapping[str, str],
    settings: RenderSettings,
    names: Sequence[str],
    rewrites: list[tuple[Origin | None, str]],
) -> Iterable[list[str]]:
    route_key = config.route.bind.key if config.route else None
    seen: set[str] = set()
    for line in lines:
        if line[0] != "bind" or len(line) < 2:
            yield line
            continue
        bind = Bind(frontend, line[1], tuple(line[2:]), origin_of(line))
        where = bind.origin
        if bind.on_a_socket_file:
            rewrites.append((where, f"bind {bind.address} left out: not an address the load reaches on loopback"))
            continue
        if bind.key in seen:
            rewrites.append((where, f"bind {bind.address} shares the socket of the frontend's other bind on that port"))
            continue
        seen.add(bind.key)
        address = listens.get(bind.key) or f"{LOOPBACK}:{free_port()}"
        params = _bind_params(bind, settings, names, bind.key == route_key, rewrites)
        rewrites.append((where, f"bind {bind.address} -> {address}"))
        yield Line.at(["bind", address, *params], where)


def _bind_params(
    bind: Bind,
    settings: RenderSettings,
    names: Sequence[str],
    is_route: bool,
    rewrites: list[tuple[Origin | None, str]],
) -> list[str]:
    params = list(bind.params)
    kept: list[str] = []
    dropped: list[str] = []
    index = 0
    while index < len(params):
        word = params[index]
        if word in _BIND_FILE_OPTIONS:
            dropped.append(" ".join(params[index : index + 1 + _BIND_FILE_OPTIONS[word]]))
            index += 1 + _BIND_FILE_OPTIONS[word]
            continue
        if word in _BIND_DROPPED_FLAGS or (word == "accept-proxy" and is_route):
            dropped.append(word)
        else:
            kept.append(word)
        index += 1
    if "ssl" in kept:
        if settings.certificates is None:
            kept.remove("ssl")
            dropped.append("ssl (no certificates on this runtime)")
        else:
            kept += ["crt", str(settings.certificates.issue_pem(names))]
            rewrites.append(
                (
                    bind.origin,
                    f"bind {bind.address}: a certificate of the run's CA for {', '.join(names) or 'localhost'}",
                )
            )
    if dropped:
        rewrites.append((bind.origin, f"bind {bind.address}: {', '.join(dropped)} dropped"))
    return kept


def _owned(line: Sequence[str]) -> bool:
    if line[0] in _OWNED:
        return True
    # An option is named by the word after `option` (or `no option`); later words are its
    # arguments, which may be anything: `option httpchk GET /api/health "httplog"` is a health
    # check to keep, while `option httplog clf` is a log option to replace.
    if line[0] == "option":
        name = line[1:2]
    elif tuple(line[:2]) == ("no", "option"):
        name = line[2:3]
    else:
        # `no log` would silence the log the harness reads.
        return line[:2] == ["no", "log"]
    return bool(name) and name[0] in _OWNED_OPTIONS


def _global_lines(settings: RenderSettings) -> list[list[str]]:
    return [
        ["stats", "socket", f"abns@{settings.stats_socket}", "level", "admin"],
        # -db keeps HAProxy in the foreground; its logs go to stdout, which is the run's log file.
        ["log", "stdout", "format", "raw", "local0"],
    ]
