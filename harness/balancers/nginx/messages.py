"""nginx's own complaints about the rendered config, told at the user's file and line."""

from __future__ import annotations

import re
from pathlib import Path

import crossplane

from harness.balancers.nginx.parse import Directive, Origin

_AT_LINE = re.compile(r" in (\S+):(\d+)")


def origins_by_line(rendered_file: Path, tree: list[Directive]) -> dict[int, Origin]:
    """For each line of the rendered file that holds a user's directive, the user's file and line."""
    payload = crossplane.parse(str(rendered_file), single=True, comments=False, check_ctx=False, check_args=False)
    if payload["errors"]:
        return {}
    found: dict[int, Origin] = {}

    def pair(built: list[Directive], ours: list[Directive]) -> None:
        for parsed, directive in zip(built, ours, strict=False):
            if directive.get("origin") is not None:
                found[int(parsed["line"])] = directive["origin"]
            pair(parsed.get("block", []), directive.get("block", []))

    pair(payload["config"][0]["parsed"], tree)
    return found


def in_users_terms(message: str, rendered_file: Path, tree: list[Directive]) -> str:
    """nginx's message with ``in RENDERED:LINE`` told as the user's file and line."""
    lines = origins_by_line(rendered_file, tree)

    def told(match: re.Match[str]) -> str:
        if match.group(1) != str(rendered_file):
            return match.group(0)
        where = lines.get(int(match.group(2)))
        return f" in {where}" if where else f" in the rendered {rendered_file.name}:{match.group(2)}"

    return _AT_LINE.sub(told, message)
