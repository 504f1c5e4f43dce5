"""Compose durations (`10s`, `1m30s`, `500ms`, `1h`, `2.5s`, or a number of seconds) as seconds."""

import math
import re

from corral.compose.values import show
from corral.model.errors import InvalidSpec

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_UNIT = r"(?:ns|us|µs|ms|s|m|h)"
_SECONDS = re.compile(_NUMBER)
_DURATION = re.compile(f"(?:{_NUMBER}{_UNIT})+")
_PART = re.compile(f"({_NUMBER})({_UNIT})")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_EXPECTED = "expected e.g. 10s, 1m30s, 500ms, 1h or a number of seconds"


def parse_duration(value: object, path: str) -> float:
    """Seconds in `value`: a duration string (Go syntax, units ns..h) or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidSpec(path, f"must be a duration: {_EXPECTED}")
    if isinstance(value, str):
        seconds = _parse_text(value, path)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidSpec(path, f"invalid duration {show(value)}: must be a finite, non-negative time")
    return seconds


def _parse_text(text: str, path: str) -> float:
    stripped = text.strip()
    if _SECONDS.fullmatch(stripped):
        return float(stripped)
    if not _DURATION.fullmatch(stripped):
        raise InvalidSpec(path, f"invalid duration {show(text)}: {_EXPECTED}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(stripped))
