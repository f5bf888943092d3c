"""Servers added to a running HAProxy through its runtime API, instead of a reload.

A reload starts a new worker whose connection counts begin at zero, while the old worker keeps
the sessions it holds: leastconn then spreads new sessions evenly, blind to the old ones. A
server added with ``add server`` joins the running worker, whose counts are whole, so leastconn
sends it the new connections until it has caught up. Only additions go this way; any other
change of the rendered config (a server removed or changed) takes a reload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

REGISTERED = "New server registered."


@dataclass(frozen=True)
class ServerLine:
    backend: str
    name: str
    words: tuple[str, ...]  # the address and the server's keywords, as rendered


def server_lines(text: str) -> dict[tuple[str, str], ServerLine]:
    """Each ``server`` line of a rendered config by its backend (or listen section) and name."""
    servers: dict[tuple[str, str], ServerLine] = {}
    section = ""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if not line[0].isspace():
            section = words[1] if words[0] in ("backend", "listen") and len(words) > 1 else ""
        elif words[0] == "server" and section and len(words) >= 3:
            servers[(section, words[1])] = ServerLine(section, words[1], tuple(words[2:]))
    return servers


def additions(before: str, after: str) -> list[ServerLine] | None:
    """The servers ``after`` adds to ``before``; None when it changes or removes any other line."""
    old, new = server_lines(before), server_lines(after)
    if any(new.get(key) != line for key, line in old.items()):
        return None
    return [line for key, line in new.items() if key not in old]


def add_servers(lines: list[ServerLine], command: Callable[[str], str]) -> str | None:
    """Adds and enables each server through ``command`` (the stats socket); the first refusal, or None."""
    for line in lines:
        target = f"{line.backend}/{line.name}"
        answer = command(f"add server {target} {' '.join(line.words)}").strip()
        if answer != REGISTERED:
            return f"add server {target}: {answer}"
        follow = [f"enable server {target}"] + ([f"enable health {target}"] if "check" in line.words else [])
        for step in follow:
            answer = command(step).strip()
            if answer:
                return f"{step}: {answer}"
    return None
