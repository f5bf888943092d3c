"""Reading a user's HAProxy config and rendering the one the harness runs.

HAProxy's configuration is line-oriented: a section keyword (``global``, ``defaults``,
``frontend``, ``backend``, ``listen``) opens a section, every following line is one
keyword with its arguments. Words split on blanks, with shell-like quoting, and ``#``
starts a comment; ``shlex`` in POSIX mode follows the same rules for what the shipped
configs and ordinary user configs contain. As with nginx, a ``server`` line names a
service (``server api-gateway api-gateway:3000 check``) and the harness expands it into
one server per instance, keeping every parameter.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.balancers.base import Peer, ServerClaims
from harness.errors import ConfigError
from harness.net import LOOPBACK, free_port
from harness.runtimes.base import Instance

SECTIONS = {
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "program",
    "cache", "ring", "http-errors", "mailers", "log-forward",
}  # fmt: skip
# The fields of each log line, tab-separated; the parser reads them by position.
LOG_FORMAT = r"%Ts\t%ms\t%ci\t%HM\t%HU\t%ST\t%si:%sp\t%rc\t%Tr\t%Ta\t%pid\t%s\t%Tc\t%Th\t%Ti"
# Directives the harness owns: wherever the user put them, they are replaced.
_OWNED = {"log", "log-format"}
# Process-level settings the harness owns in `global` only (`user` and `group` mean
# something else in a userlist).
_OWNED_IN_GLOBAL = {"daemon", "pidfile", "chroot", "user", "group", "uid", "gid", "stats", "master-worker"}
_OWNED_OPTIONS = {"httplog", "tcplog", "dontlognull"}


@dataclass
class Section:
    kind: str
    name: str
    lines: list[list[str]] = field(default_factory=list)

    def has(self, *words: str) -> bool:
        return any(line[: len(words)] == list(words) for line in self.lines)

    def first(self, keyword: str) -> list[str] | None:
        return next((line for line in self.lines if line[0] == keyword), None)


@dataclass(frozen=True)
class Server:
    """One ``server`` line of a backend, before expansion."""

    name: str
    service: str
    port: str | None
    params: tuple[str, ...]

    def param(self, key: str) -> str | None:
        """The value after keyword ``key`` (``weight 3``), "" for a flag (``backup``), None when absent."""
        for index, word in enumerate(self.params):
            if word == key:
                takes_value = key not in {"backup", "check", "disabled", "ssl"}
                return self.params[index + 1] if takes_value and index + 1 < len(self.params) else ""
        return None

    @property
    def weight(self) -> int:
        value = self.param("weight")
        return int(value) if value else 1


@dataclass
class HaproxyConfig:
    path: Path
    sections: list[Section]
    balancer: str = "haproxy"

    def peers_servers(self) -> list[Server]:
        """The server lines of the first backend, the one under test."""
        return [_server(line) for line in self.backends()[0].lines if line[0] == "server"]

    def peers(self) -> list[Peer]:
        servers = self.peers_servers()
        return [
            Peer(
                s.service,
                s.weight,
                serves=s.param("backup") is None and s.param("disabled") is None,
                role="down"
                if s.param("disabled") is not None
                else "backup"
                if s.param("backup") is not None
                else "primary",
            )
            for s in servers
        ]

    def effective_workers(self, requested: int | None) -> int:
        # HAProxy runs one process whose threads share every counter.
        return 1

    def shares_counts(self) -> bool:
        return True

    def backends(self) -> list[Section]:
        return [s for s in self.sections if s.kind in {"backend", "listen"} and s.first("server") is not None]

    def servers(self) -> list[Server]:
        return [_server(line) for backend in self.backends() for line in backend.lines if line[0] == "server"]

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(server.service for server in self.servers()))

    @property
    def side_services(self) -> list[str]:
        return []

    def claims(self) -> str:
        return ""

    def server_claims(self) -> ServerClaims:
        """``backup`` and ``disabled`` (HAProxy's down) and ``maxconn`` of the backend under test."""
        servers = self.peers_servers()
        checks = active_checks(self)
        backend = self.backends()[0]
        return ServerClaims(
            where=f"{self.path.name}: {backend.kind} {backend.name}",
            down=tuple(dict.fromkeys(s.service for s in servers if s.param("disabled") is not None)),
            backup=tuple(dict.fromkeys(s.service for s in servers if s.param("backup") is not None)),
            # maxconn queues what is beyond it rather than refusing it: at most N at the server all the same.
            max_conns=tuple((s.service, int(n)) for s in servers if (n := s.param("maxconn")) and int(n) > 0),
            shared_counts=True,
            # Without `check` HAProxy never marks a server down, so a backup never takes over.
            recovery_s=checks.recover_within if checks.enabled else 0.0,
            detect_s=checks.detect_within(unanswered=False) if checks.enabled else 0.0,
        )

    def inferred_algorithm(self) -> str:
        """The algorithm the first backend asks for, named as ``harness bench --algo`` names it."""
        backend = self.backends()[0]
        balance = (backend.first("balance") or ["balance", "roundrobin"])[1:]
        if balance[:1] == ["leastconn"]:
            return "least_conn"
        if balance[:1] == ["source"]:
            return "ip_hash"
        if balance[:1] == ["random"]:
            return "random"
        if balance[:1] not in (["roundrobin"], ["static-rr"]):
            return f"balance {' '.join(balance)}"  # no algorithm of the harness; bench asks for --algo
        servers = self.servers()
        if len({server.weight for server in servers}) > 1:
            return "weighted"
        if any(server.param("check") is not None for server in servers) or backend.has("option", "httpchk"):
            return "health_checks"
        return "round_robin"


def load_config(path: Path) -> HaproxyConfig:
    """Parses a user's HAProxy config; ConfigError names the file and line when it cannot."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    sections: list[Section] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as exc:
            raise ConfigError(f"cannot parse {path}:{number}: {exc}") from exc
        if not words:
            continue
        if words[0] in SECTIONS:
            sections.append(Section(words[0], words[1] if len(words) > 1 else ""))
        elif not sections:
            raise ConfigError(f"cannot parse {path}:{number}: {words[0]!r} outside any section")
        else:
            sections[-1].lines.append(words)
    config = HaproxyConfig(path=path, sections=sections)
    if not config.backends():
        raise ConfigError(f"{path} has no backend with a server: nothing for the harness to balance")
    return config


def _server(line: Sequence[str]) -> Server:
    if len(line) < 3:
        raise ConfigError(f"a server line needs a name and an address: {' '.join(line)!r}")
    _, name, address, *params = line
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, ""
    return Server(name=name, service=host, port=port or None, params=tuple(params))


_TIME_UNITS = {"us": 0.000001, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def haproxy_seconds(value: str) -> float:
    """HAProxy's time syntax in seconds: a number with an optional unit, milliseconds by default."""
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :] or "ms"
    if not number or unit not in _TIME_UNITS:
        raise ConfigError(f"not a HAProxy time: {value!r}")
    return float(number) * _TIME_UNITS[unit]


@dataclass(frozen=True)
class ActiveChecks:
    """The settings that decide how HAProxy finds and routes around a failed server."""

    enabled: bool  # `check` on the servers
    inter: float  # seconds between checks
    fall: int  # failed checks that mark a server DOWN
    rise: int  # passed checks that mark it UP again
    redispatch: bool  # a request whose server failed may go to another server
    retries: int
    http: bool = False  # `option httpchk`: checks request the health endpoint, not just connect
    check_timeout: float = 0.0  # `timeout check`, else inter

    def detect_within(self, unanswered: bool) -> float:
        """Latest a failed server is marked DOWN. HAProxy starts the next check ``inter`` after
        the previous one ends; a refused check ends at once, an unanswered one (hung server,
        dropped SYNs) only at its timeout: up to one interval until the first check, then
        fall checks."""
        timeout = (self.check_timeout or self.inter) if unanswered else 0.0
        return self.inter + self.fall * timeout + (self.fall - 1) * self.inter + (0.0 if unanswered else self.inter)

    @property
    def recover_within(self) -> float:
        return self.rise * self.inter + self.inter


def active_checks(config: HaproxyConfig) -> ActiveChecks:
    """Reads the first backend's check settings, with HAProxy's defaults (inter 2s fall 3 rise 2, retries 3):
    ``defaults``, then the backend, then ``default-server``, then the server line."""
    backend = config.backends()[0]
    sections = [*[s for s in config.sections if s.kind == "defaults"][-1:], backend]
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
    server = config.peers_servers()[0]
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


@dataclass(frozen=True)
class RenderSettings:
    run_dir: Path
    listen: str
    weights: Mapping[str, int] | None = None
    # An abstract-namespace socket: no file to clean up, and no limit from the length of
    # the run directory's path (a UNIX socket path holds at most 107 bytes).
    stats_socket: str = "lb-harness"


def render(config: HaproxyConfig, instances: Sequence[Instance], settings: RenderSettings) -> str:
    """The config HAProxy runs: services expanded into ``instances``, socket and logs in the run.

    Raises ConfigError when a server names a service that has no instance.
    """
    by_service: dict[str, list[Instance]] = {}
    for instance in instances:
        by_service.setdefault(instance.service, []).append(instance)
    out: list[str] = []
    kinds = {section.kind for section in config.sections}
    # The first bind of the first frontend is the address clients use; every other bind
    # gets a port of its own on loopback, as two binds on one port would share its traffic.
    listens = iter([settings.listen])
    if "global" not in kinds:
        out += _section_text("global", "", _global_lines(settings))
    for section in config.sections:
        lines = [line for line in section.lines if not _owned(line)]
        if section.kind == "global":
            lines = _global_lines(settings) + [line for line in lines if line[0] not in _OWNED_IN_GLOBAL]
        if section.kind == "defaults":
            lines = _log_lines() + lines
        if section.kind in {"frontend", "listen"}:
            lines = [
                ["bind", next(listens, f"{LOOPBACK}:{free_port()}"), *line[2:]] if line[0] == "bind" else line
                for line in lines
            ]
        if section.kind in {"backend", "listen"}:
            lines = list(_expand_servers(lines, by_service, settings, section.name))
        out += _section_text(section.kind, section.name, lines)
    if "defaults" not in kinds:
        # After global: HAProxy copies global's loggers when it reads `log global`.
        global_end = len(_section_text("global", "", [])) if "global" not in kinds else _after_global(out)
        out[global_end:global_end] = _section_text("defaults", "", [*_log_lines(), ["mode", "http"]])
    return "\n".join(out) + "\n"


def _after_global(lines: list[str]) -> int:
    """The index just past the rendered global section."""
    start = lines.index("global")
    return lines.index("", start) + 1


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
        return False
    return bool(name) and name[0] in _OWNED_OPTIONS


def _global_lines(settings: RenderSettings) -> list[list[str]]:
    return [
        ["stats", "socket", f"abns@{settings.stats_socket}", "level", "admin"],
        # -db keeps HAProxy in the foreground; its logs go to stdout, which is the run's log file.
        ["log", "stdout", "format", "raw", "local0"],
    ]


def _log_lines() -> list[list[str]]:
    return [["log", "global"], ["log-format", LOG_FORMAT]]


def _expand_servers(
    lines: Iterable[list[str]], by_service: Mapping[str, list[Instance]], settings: RenderSettings, backend: str
) -> Iterable[list[str]]:
    for line in lines:
        if line[0] != "server":
            yield line
            continue
        server = _server(line)
        instances = by_service.get(server.service)
        if not instances:
            known = ", ".join(sorted(by_service)) or "none"
            raise ConfigError(
                f"backend {backend} names service {server.service!r}, which has no instance (services started: {known})"
            )
        for instance in instances:
            params = list(server.params)
            if settings.weights and instance.name in settings.weights:
                if "weight" in params:
                    index = params.index("weight")
                    del params[index : index + 2]
                params += ["weight", str(settings.weights[instance.name])]
            yield ["server", instance.name, instance.address, *params]


def _section_text(kind: str, name: str, lines: Iterable[Sequence[str]]) -> list[str]:
    return [f"{kind} {name}".rstrip(), *("    " + " ".join(_quote(word) for word in line) for line in lines), ""]


def _quote(word: str) -> str:
    """A word as one HAProxy argument, read back the same by HAProxy and by ``load_config``.

    Inside double quotes HAProxy reads backslash escapes (the log format's \\t is a tab), so
    other backslashes pass through; a backslash that would escape the closing quote, a quote
    or another backslash is doubled, and a quote is escaped.
    """
    if word and not any(c in word for c in " \t\"'#\\"):
        return word
    out = []
    for index, char in enumerate(word):
        following = word[index + 1] if index + 1 < len(word) else ""
        if char == "\\" and following in ("", '"', "\\"):
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _role(disabled: bool, backup: bool) -> str:
    return "down" if disabled else "backup" if backup else "primary"
