"""nginx's time syntax, read the way nginx reads it."""

from __future__ import annotations

from harness.errors import ConfigError

_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def nginx_seconds(value: str) -> float:
    """nginx's time syntax (``30s``, ``500ms``, ``1m30s``, ``10``) in seconds."""
    total, number = 0.0, ""
    index = 0
    while index < len(value):
        char = value[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if value.startswith("ms", index) else char
        if unit not in _TIME_UNITS or not number:
            raise ConfigError(f"not an nginx time: {value!r}")
        total += float(number) * _TIME_UNITS[unit]
        number = ""
        index += len(unit)
    return total + (float(number) if number else 0.0)
