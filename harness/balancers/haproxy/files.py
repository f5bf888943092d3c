"""The files a HAProxy config names besides itself (ACL lists, maps, Lua), found beside the config."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from pathlib import Path

from harness.balancers.haproxy.parse import Section, origin_of
from harness.errors import ConfigError

SYSTEM_CONFIG_DIR = "/etc/haproxy/"
# Words that name a file the config needs: ACL patterns (-f), maps (map_dom(FILE,...)), Lua.
_MAP_FILE = re.compile(r"\bmap(?:_\w+)?\(([^,)]+)")


def resolve_file(main: Path, written: str) -> Path | None:
    """Where a file the config names is, here: beside the config (``/etc/haproxy/X`` as ``X`` in its
    folder, a relative path from it), else on this machine as written (read only); None when nowhere."""
    folder = main.parent
    candidates = [folder / written.removeprefix(SYSTEM_CONFIG_DIR)] if written.startswith(SYSTEM_CONFIG_DIR) else []
    candidates += [folder / written] if not written.startswith("/") else [Path(written), folder / Path(written).name]
    return next((c for c in candidates if c.is_file()), None)


def referenced_files(path: Path, sections: Iterable[Section]) -> dict[str, str]:
    """Every file an ACL, a map or ``lua-load`` needs, and where it is here; ConfigError at the line
    of one that is nowhere, saying where to put it."""
    found: dict[str, str] = {}
    for section in sections:
        for line in section.lines:
            wanted = [word for key, word in itertools.pairwise(line) if key == "-f"]
            wanted += [m.group(1) for word in line for m in _MAP_FILE.finditer(word)]
            if line[0] in {"lua-load", "lua-load-per-thread"} and len(line) > 1:
                wanted.append(line[1])
            for written in wanted:
                local = resolve_file(path, written)
                if local is None:
                    beside = path.parent / (written.removeprefix(SYSTEM_CONFIG_DIR) if written.startswith(
                        SYSTEM_CONFIG_DIR) else Path(written).name)  # fmt: skip
                    raise ConfigError(
                        f"{origin_of(line) or path}: {written} is not here: put a copy at {beside} "
                        "(the harness reads /etc/haproxy/X as X beside the config)"
                    )
                found[written] = str(local.resolve())
    return found
