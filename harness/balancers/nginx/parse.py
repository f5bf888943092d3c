"""Reading a user's nginx config as nginx would: the main file and every file it includes.

The result is one tree of crossplane directives in which every ``include`` of the user's
own files is replaced by what the files hold, and every directive carries the file and
line it came from, so that anything said about it later (a refusal, a rewrite, nginx's
own complaint about the rendered config) points at the user's file and line.

Includes are looked up the way nginx looks them up on the user's server, but inside the
user's folder: a relative path from the main config's directory (nginx's conf prefix), and
an absolute ``/etc/nginx/...`` path at the same place under that directory first
(``/etc/nginx/conf.d/*.conf`` -> ``conf.d/*.conf`` next to the config). A system file
that is only read (``mime.types`` and the ``*_params`` files) may come from this machine;
any other absolute include that is not in the user's folder is left out, and said so.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crossplane

from harness.balancers.origin import Origin
from harness.errors import ConfigError

__all__ = ["Directive", "Origin", "ParsedTree", "read_tree"]

Directive = dict[str, Any]

SYSTEM_CONFIG_DIR = Path("/etc/nginx")
# Files a distribution's nginx ships that only declare data (types, parameter lists): using this
# machine's copy read-only changes nothing about how the user's config balances.
READ_ONLY_SYSTEM_FILES = frozenset(
    {"mime.types", "fastcgi_params", "fastcgi.conf", "proxy_params", "scgi_params", "uwsgi_params"}
)
# nginx refuses an include nested deeper than this (NGX_CONF_MAX_INCLUDE_DEPTH is 10 in recent
# versions); a cycle reaches it quickly too.
MAX_INCLUDE_DEPTH = 10


@dataclass
class ParsedTree:
    """The user's whole config as one tree; ``notes`` says which includes were changed or left out."""

    main: Path
    tree: list[Directive]
    files: list[Path] = field(default_factory=list)
    notes: list[tuple[Origin, str]] = field(default_factory=list)


def origin(directive: Directive) -> Origin:
    """The file and line a parsed directive came from."""
    return directive["origin"]  # type: ignore[no-any-return]


def read_tree(main: Path) -> ParsedTree:
    """Parses ``main`` and its includes; ConfigError names the user's file and line when it cannot."""
    if not main.is_file():
        raise ConfigError(f"config file not found: {main}")
    main = main.resolve()
    reader = _Reader(main)
    tree = reader.read(main, depth=0)
    return ParsedTree(main=main, tree=tree, files=reader.files, notes=reader.notes)


class _Reader:
    def __init__(self, main: Path) -> None:
        self.main = main
        self.base = main.parent
        self.files: list[Path] = []
        self.notes: list[tuple[Origin, str]] = []

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)

    def read(self, path: Path, depth: int) -> list[Directive]:
        self.files.append(path)
        try:
            payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False, check_args=False)
        except Exception as exc:  # crossplane raises its own errors for unreadable files
            raise ConfigError(f"cannot read {self.shown(path)}: {exc}") from exc
        if payload["errors"]:
            first = payload["errors"][0]
            raise ConfigError(f"cannot parse {self.shown(path)}:{first.get('line', '?')}: {first['error']}")
        return list(self._expand(payload["config"][0]["parsed"], path, depth))

    def _expand(self, block: Iterable[Directive], path: Path, depth: int) -> Iterator[Directive]:
        for parsed in block:
            directive: Directive = {
                "directive": parsed["directive"],
                "args": list(parsed["args"]),
                "origin": Origin(path, int(parsed.get("line", 0)), self.shown(path)),
            }
            if "block" in parsed:
                directive["block"] = list(self._expand(parsed["block"], path, depth))
            if directive["directive"] == "include" and directive["args"]:
                yield from self._include(directive, depth)
            else:
                yield directive

    def _include(self, directive: Directive, depth: int) -> Iterator[Directive]:
        where = origin(directive)
        target = directive["args"][0]
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise ConfigError(f"{where}: include {target} nests more than {MAX_INCLUDE_DEPTH} deep (a cycle?)")
        found = self._find(target)
        if found is None:
            if Path(target).name in READ_ONLY_SYSTEM_FILES:
                system = Path(target) if Path(target).is_absolute() else SYSTEM_CONFIG_DIR / target
                if system.is_file():
                    # Kept as an include of this machine's file, read only.
                    self.notes.append((where, f"include {target}: this machine's copy, read only"))
                    yield {**directive, "args": [str(system)]}
                    return
            if Path(target).is_absolute():
                self.notes.append((where, f"include {target}: not in {self.shown(self.base) or '.'}, left out"))
                return
            if glob.has_magic(target):
                return  # nginx too accepts a pattern that matches nothing
            raise ConfigError(f"{where}: include {target}: no such file in {self.base}")
        for path in found:
            if Path(target).is_absolute():  # a production path read from the user's folder: said once per file
                self.notes.append((where, f"include {target}: read from {self.shown(path)}"))
            yield from self.read(path, depth + 1)

    def _find(self, target: str) -> list[Path] | None:
        """The files ``include target`` reads, in nginx's (sorted) order; None when there are none."""
        candidates: list[Path] = []
        path = Path(target)
        if not path.is_absolute():
            candidates.append(self.base / path)
        else:
            if path.is_relative_to(SYSTEM_CONFIG_DIR):
                candidates.append(self.base / path.relative_to(SYSTEM_CONFIG_DIR))
            if path.is_relative_to(self.base):
                candidates.append(path)
        for candidate in candidates:
            if glob.has_magic(str(candidate)):
                matches = sorted(Path(p) for p in glob.glob(str(candidate)) if Path(p).is_file())
                if matches:
                    return matches
            elif candidate.is_file():
                return [candidate]
        return None


def walk(block: Iterable[Directive]) -> Iterator[Directive]:
    """Every directive of ``block`` and of the blocks inside it, in order."""
    for directive in block:
        yield directive
        yield from walk(directive.get("block", []))


def without_origins(block: Iterable[Directive]) -> list[Directive]:
    """The tree as crossplane builds it: directive, args and block only."""
    result: list[Directive] = []
    for directive in block:
        plain: Directive = {"directive": directive["directive"], "args": list(directive["args"])}
        if "block" in directive:
            plain["block"] = without_origins(directive["block"])
        result.append(plain)
    return result
