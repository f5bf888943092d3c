"""What a front end wants to hear while a run goes on."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def phase(self, algorithm: str, text: str) -> None: ...

    def load_progress(self, algorithm: str, elapsed: float, duration: float, requests: int) -> None: ...

    def notice(self, text: str) -> None:
        """A line the user acts on (the command that starts the workers a run waits for): printed for good."""


class SilentReporter:
    def phase(self, algorithm: str, text: str) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def load_progress(self, algorithm: str, elapsed: float, duration: float, requests: int) -> None:
        pass
