"""A check's verdict: passed, failed or not applicable, with the numbers behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool | None
    summary: str
    observed: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    false_alarm_rate: float | None = None

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]

    @property
    def failed(self) -> bool:
        return self.passed is False

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}

    def __str__(self) -> str:
        return f"{self.status} {self.check}: {self.summary}"


def not_applicable(check: str, reason: str) -> Verdict:
    return Verdict(check=check, passed=None, summary=reason)
