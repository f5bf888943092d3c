r"""Reading a user's HAProxy config into sections of lines, each line with its file and line number.

HAProxy's configuration is line-oriented: a section keyword (``global``, ``defaults``,
``frontend``, ``backend``, ``listen``) opens a section, every following line is one
keyword with its arguments. Words are split the way HAProxy's ``parse_line`` splits them:
on blanks outside quotes, ``#`` outside quotes starts a comment, a backslash escapes a
blank, a quote, ``#`` or another backslash and spells ``\r``, ``\n``, ``\t`` and ``\xNN``,
and any other backslash stays (``path_reg \.php$``); single quotes keep everything as it
is; inside double quotes the escapes apply and ``$NAME`` is HAProxy's environment
variable, kept as written so that HAProxy expands it when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.balancers.origin import Origin
from harness.errors import ConfigError

SECTIONS = {
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "program",
    "cache", "ring", "http-errors", "mailers", "log-forward", "fcgi-app", "crt-store", "traces",
}  # fmt: skip
_ESCAPED = {"\\": "\\", " ": " ", "#": "#", "'": "'", '"': '"', "$": "$", "r": "\r", "n": "\n", "t": "\t"}
# `$NAME` or `${NAME}` in double quotes: an environment variable of HAProxy's.
_ENVIRONMENT_REFERENCE = re.compile(r"\$(\{|[A-Za-z_])")


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
            words = split_line(raw)
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


def split_line(raw: str) -> list[str]:
    """The words of one config line, as HAProxy reads them; ValueError on an unclosed quote."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote: str | None = None
    index = 0
    while index < len(raw):
        char = raw[index]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                word.append(char)
        elif char == "\\" and index + 1 < len(raw):
            following = raw[index + 1]
            if following == "x" and len(raw) > index + 3 and _is_hex(raw[index + 2 : index + 4]):
                word.append(chr(int(raw[index + 2 : index + 4], 16)))
                index += 3
            elif following in _ESCAPED:
                word.append(_ESCAPED[following])
                index += 1
            else:
                word.append(char)  # HAProxy keeps a backslash it does not know: a regex's \d stays
            in_word = True
        elif quote == '"':
            if char == '"':
                quote = None
            else:
                word.append(char)
        elif char in "'\"":
            quote, in_word = char, True
        elif char == "#":
            break
        elif char in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        else:
            word.append(char)
            in_word = True
        index += 1
    if quote is not None:
        raise ValueError(f"no closing quotation ({quote})")
    if in_word:
        words.append("".join(word))
    return words


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


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


def server_lines(section: Section) -> list[list[str]]:
    """The ``server`` and ``server-template`` lines of a backend."""
    return [line for line in section.lines if line[0] in {"server", "server-template"}]


# Address prefixes of HAProxy's that only say the family.
_FAMILY_PREFIXES = ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@")


def parse_server(line: Sequence[str]) -> Server:
    """A ``server NAME ADDRESS params`` line, or ``server-template PREFIX COUNT ADDRESS params``."""
    needed = 4 if line[0] == "server-template" else 3
    if len(line) < needed:
        raise ConfigError(
            f"{origin_of(line) or 'config'}: a server line needs a name and an address: {' '.join(line)!r}"
        )
    name, address, params = line[1], line[needed - 1], tuple(line[needed:])
    for prefix in _FAMILY_PREFIXES:
        address = address.removeprefix(prefix)
    if address.startswith(("unix@", "/")):
        # A UNIX socket: the socket's file name is the service's (/run/app.sock serves "app").
        stem = Path(address.removeprefix("unix@")).stem or "app"
        return Server(name=name, service=stem, port=None, params=params, origin=origin_of(line))
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, ""
    return Server(name=name, service=host, port=port or None, params=params, origin=origin_of(line))


_TIME_UNITS = {"us": 0.000001, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def haproxy_seconds(value: str) -> float:
    """HAProxy's time syntax in seconds: a number with an optional unit, milliseconds by default."""
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :] or "ms"
    if not number or unit not in _TIME_UNITS:
        raise ConfigError(f"not a HAProxy time: {value!r}")
    return float(number) * _TIME_UNITS[unit]


def quote(word: str) -> str:
    """A word as one HAProxy argument, read back the same by HAProxy and by ``split_line``.

    A plain word is written as it is. Any other goes in double quotes, where a quote, every
    backslash and a ``$`` that starts no variable are escaped and control characters spelled
    (\\t, \\r, \\n, \\xNN); a ``$NAME`` stays, for HAProxy to expand as the user's config had it.
    """
    if word and not any(c in word for c in " \t\"'#\\$") and word.isprintable():
        return word
    out = []
    for index, char in enumerate(word):
        if char == "$" and not _ENVIRONMENT_REFERENCE.match(word, index):
            out.append("\\$")
        elif char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif char == "\n":
            out.append("\\n")
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 256 else char)
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
