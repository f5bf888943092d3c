"""Waiting until something is ready: a strategy with a timeout, a poll interval, and a
timeout message that says what was awaited, what was last seen, and the last log lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.errors import StartupError

T = TypeVar("T")


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, or an empty string when it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class StillWaiting(Exception):
    """Raised by a probe to say what it saw instead of what it awaits; the timeout message quotes it."""


@dataclass
class WaitStrategy:
    """Polls ``probe`` until it returns a value that is not None.

    Exceptions listed in ``not_yet`` mean "not ready yet"; any other exception propagates.
    """

    what: str
    timeout: float = 10.0
    interval: float = 0.02
    not_yet: tuple[type[BaseException], ...] = (OSError,)
    log: Path | None = None
    last_seen: str = field(default="nothing yet", init=False)

    def wait(self, probe: Callable[[], T | None]) -> T:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                result = probe()
            except StillWaiting as exc:
                self.last_seen = str(exc)
            except self.not_yet as exc:
                self.last_seen = f"{type(exc).__name__}: {exc}"
            else:
                if result is not None:
                    return result
                self.last_seen = "not ready"
            if time.monotonic() >= deadline:
                raise StartupError(self._timeout_message())
            time.sleep(self.interval)

    def _timeout_message(self) -> str:
        message = f"{self.what} not ready after {self.timeout:g} s (last seen: {self.last_seen})"
        if self.log is not None:
            lines = tail(self.log)
            if lines:
                message += f"; last lines of {self.log}:\n{lines}"
        return message
