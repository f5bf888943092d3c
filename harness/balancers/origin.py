"""Where something in a user's config is written, so that what the harness says about it points there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Origin:
    """Where a directive is written: a file of the user's config and a line in it."""

    file: Path
    line: int
    shown: str  # the file as the user knows it, relative to the main config's directory when inside it

    def __str__(self) -> str:
        return f"{self.shown}:{self.line}"
