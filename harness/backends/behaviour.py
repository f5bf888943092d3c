"""What an instance does to a request: fortio-style per-request knobs and run-time modes.

Per-request knobs follow fortio's syntax so that users can reuse what they know:
``delay=250ms:10,20ms:50`` sleeps 250 ms for 10 % of requests and 20 ms for 50 %;
``status=503:20`` answers 503 for 20 % of requests. A value without ``:P`` applies to
every request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_DURATION = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|us)?$")


class KnobError(ValueError):
    """A per-request knob that cannot be understood; answered with HTTP 400."""


def parse_duration_ms(text: str) -> float:
    """``250ms``, ``1.5s``, ``800us`` or a bare number of milliseconds, in milliseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise KnobError(f"not a duration: {text!r} (use 250ms, 1.5s or a number of ms)")
    value = float(match["value"])
    unit = match["unit"] or "ms"
    return value * {"ms": 1.0, "s": 1000.0, "us": 0.001}[unit]


def _weighted_choices(text: str, parse_value: Callable[[str], T]) -> list[tuple[T, float]]:
    choices: list[tuple[T, float]] = []
    for part in text.split(","):
        value_text, _, percent_text = part.partition(":")
        value = parse_value(value_text)
        try:
            percent = float(percent_text) if percent_text else 100.0
        except ValueError as exc:
            raise KnobError(f"not a percentage: {percent_text!r} in {text!r}") from exc
        if not 0.0 <= percent <= 100.0:
            raise KnobError(f"percentage outside 0-100: {percent_text!r} in {text!r}")
        choices.append((value, percent))
    if sum(p for _, p in choices) > 100.0 + 1e-9:
        raise KnobError(f"percentages add up to more than 100: {text!r}")
    return choices


def _pick(choices: list[tuple[T, float]], rng: random.Random) -> T | None:
    roll = rng.uniform(0.0, 100.0)
    for value, percent in choices:
        if roll < percent:
            return value
        roll -= percent
    return None


def pick_delay_ms(knob: str | None, rng: random.Random) -> float:
    """The delay this request asked for with ``delay=``, 0 when none applies."""
    if not knob:
        return 0.0
    picked = _pick(_weighted_choices(knob, parse_duration_ms), rng)
    return 0.0 if picked is None else picked


def _parse_status(text: str) -> int:
    try:
        status = int(text)
    except ValueError as exc:
        raise KnobError(f"not an HTTP status: {text!r}") from exc
    if not 100 <= status <= 599:
        raise KnobError(f"HTTP status outside 100-599: {status}")
    return status


def pick_status(knob: str | None, rng: random.Random) -> int:
    """The status this request asked for with ``status=``, 200 when none applies."""
    if not knob:
        return 200
    picked = _pick(_weighted_choices(knob, _parse_status), rng)
    return 200 if picked is None else picked


@dataclass
class InstanceMode:
    """Run-time behaviour set through the control endpoint; applies to every request."""

    healthy: bool = True
    delay_ms: float = 0.0
    delay: str = ""  # a fortio-style distribution added on top, e.g. "100ms:50,1s:5"
    fail_rate: float = 0.0
    fail_status: int = 503

    def as_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "delay_ms": self.delay_ms,
            "delay": self.delay,
            "fail_rate": self.fail_rate,
            "fail_status": self.fail_status,
        }
