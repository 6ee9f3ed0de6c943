"""Durations as written in config files: "30s", "15m", "1h", "1d", "500ms"."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError with the accepted forms on anything else."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit, e.g. 500ms, 30s, 15m, 1h, 1d"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
