"""Reading a user's HAProxy config into sections of lines, each line with its file and line number.

HAProxy's configuration is line-oriented: a section keyword (``global``, ``defaults``,
``frontend``, ``backend``, ``listen``) opens a section, every following line is one
keyword with its arguments. Words split on blanks, with shell-like quoting, and ``#``
starts a comment; ``shlex`` in POSIX mode follows the same rules for what the shipped
configs and ordinary user configs contain.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.balancers.origin import Origin
from harness.errors import ConfigError

SECTIONS = {
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "program",
    "cache", "ring", "http-errors", "mailers", "log-forward",
}  # fmt: skip


class Line(list[str]):
    """One keyword and its arguments, as words; ``origin`` is where the user wrote it (None: the harness's)."""

    origin: Origin | None = None

    @classmethod
    def at(cls, words: Sequence[str], origin: Origin | None) -> Line:
        line = cls(words)
        line.origin = origin
        return line


@dataclass
class Section:
    kind: str
    name: str
    lines: list[list[str]] = field(default_factory=list)
    origin: Origin | None = None

    def has(self, *words: str) -> bool:
        return any(line[: len(words)] == list(words) for line in self.lines)

    def first(self, keyword: str) -> list[str] | None:
        return next((line for line in self.lines if line[0] == keyword), None)

    def all(self, keyword: str) -> list[list[str]]:
        return [line for line in self.lines if line[0] == keyword]


def origin_of(line: Sequence[str]) -> Origin | None:
    """Where a line was written, when it came from the user's file."""
    return getattr(line, "origin", None)


def read_sections(path: Path) -> list[Section]:
    """The sections of ``path`` in order; ConfigError names the file and line it cannot read."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    sections: list[Section] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        where = Origin(path, number, path.name)
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as exc:
            raise ConfigError(f"cannot parse {where}: {exc}") from exc
        if not words:
            continue
        if words[0] in SECTIONS:
            sections.append(Section(words[0], words[1] if len(words) > 1 else "", origin=where))
        elif not sections:
            raise ConfigError(f"cannot parse {where}: {words[0]!r} outside any section")
        else:
            sections[-1].lines.append(Line.at(words, where))
    return sections


@dataclass(frozen=True)
class Server:
    """One ``server`` line of a backend, before expansion."""

    name: str
    service: str
    port: str | None
    params: tuple[str, ...]
    origin: Origin | None = None

    def param(self, key: str) -> str | None:
        """The value after keyword ``key`` (``weight 3``), "" for a flag (``backup``), None when absent."""
        for index, word in enumerate(self.params):
            if word == key:
                takes_value = key not in SERVER_FLAGS
                return self.params[index + 1] if takes_value and index + 1 < len(self.params) else ""
        return None

    @property
    def weight(self) -> int:
        value = self.param("weight")
        return int(value) if value else 1


# Server keywords that take no value.
SERVER_FLAGS = frozenset({"backup", "check", "disabled", "ssl", "check-ssl", "no-check-ssl", "no-ssl", "send-proxy"})


def parse_server(line: Sequence[str]) -> Server:
    if len(line) < 3:
        raise ConfigError(
            f"{origin_of(line) or 'config'}: a server line needs a name and an address: {' '.join(line)!r}"
        )
    _, name, address, *params = line
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, ""
    return Server(name=name, service=host, port=port or None, params=tuple(params), origin=origin_of(line))


_TIME_UNITS = {"us": 0.000001, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def haproxy_seconds(value: str) -> float:
    """HAProxy's time syntax in seconds: a number with an optional unit, milliseconds by default."""
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :] or "ms"
    if not number or unit not in _TIME_UNITS:
        raise ConfigError(f"not a HAProxy time: {value!r}")
    return float(number) * _TIME_UNITS[unit]


def quote(word: str) -> str:
    """A word as one HAProxy argument, read back the same by HAProxy and by ``read_sections``.

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
