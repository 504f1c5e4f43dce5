"""A cron job's schedule: when its runs are due.

Five-field cron expressions and the `@hourly`-style names are read by croniter
in the schedule's IANA time zone (so `0 9 * * *` is 09:00 local, daylight saving
included); `@every 30s` (as Nomad and robfig/cron have it) is a fixed interval
counted from an anchor (the job's creation). Times are Unix seconds in and out.
Pure: no clock is read here.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_EVERY = re.compile(r"@every\s+(.+)")
_DURATION = re.compile(r"(?:([0-9]+(?:\.[0-9]+)?)(ms|s|m|h))+")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MIN_EVERY = 1.0  # seconds: the controller passes about once a second, a shorter interval could not be kept


class InvalidSchedule(ValueError):
    """A schedule or time zone that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Due:
    """The scheduled times in (after, now]: how many, and the latest."""

    count: int
    latest: float


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: ZoneInfo
    every: float | None  # seconds, for `@every`

    def due(self, after: float, now: float, anchor: float) -> Due | None:
        """The times due after `after` up to and including `now`; None when there is none."""
        if now <= after:
            return None
        if self.every is not None:
            # times are anchor + k*every, k >= 1
            first = math.floor((after - anchor) / self.every) + 1
            last = math.floor((now - anchor) / self.every)
            first = max(first, 1)
            if last < first:
                return None
            return Due(count=last - first + 1, latest=anchor + last * self.every)
        latest = self._previous(now)
        if latest <= after:
            return None
        count = 0
        moving = croniter(self.expression, datetime.fromtimestamp(after, self.zone))
        while count < 100:  # Kubernetes stops counting missed runs at 100 too
            at = moving.get_next(float)
            if at > now:
                break
            count += 1
        return Due(count=count, latest=latest)

    def next_after(self, moment: float, anchor: float) -> float:
        """The first scheduled time after `moment`."""
        if self.every is not None:
            k = max(math.floor((moment - anchor) / self.every) + 1, 1)
            return anchor + k * self.every
        return float(croniter(self.expression, datetime.fromtimestamp(moment, self.zone)).get_next(float))

    def _previous(self, now: float) -> float:
        """The latest scheduled time at or before `now`."""
        # croniter's get_prev is strictly before its start: start just after `now`.
        return float(croniter(self.expression, datetime.fromtimestamp(now + 1e-3, self.zone)).get_prev(float))


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """The schedule of `expression` in `timezone`; raises InvalidSchedule saying what is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown time zone {timezone!r}: use an IANA name such as UTC or Europe/Paris") from None
    text = expression.strip()
    every = _EVERY.fullmatch(text)
    if every is not None:
        return Schedule(text, zone, _interval(every.group(1).strip()))
    if text.startswith("@every"):
        raise InvalidSchedule(f"invalid schedule {expression!r}: expected '@every' and a duration such as 30s or 5m")
    if len(text.split()) != 5 and not text.startswith("@"):
        raise InvalidSchedule(
            f"invalid schedule {expression!r}: expected five fields (minute hour day month weekday), "
            "a name such as @hourly, or '@every 30s'"
        )
    if not croniter.is_valid(text):
        raise InvalidSchedule(
            f"invalid schedule {expression!r}: not a cron expression (minute hour day month weekday, "
            "or @yearly, @monthly, @weekly, @daily, @hourly)"
        )
    return Schedule(text, zone, None)


def _interval(text: str) -> float:
    if not _DURATION.fullmatch(text):
        raise InvalidSchedule(f"invalid interval {text!r} in '@every': expected a duration such as 30s, 5m or 1h30m")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
    if seconds < MIN_EVERY:
        raise InvalidSchedule(f"invalid interval {text!r} in '@every': at least {MIN_EVERY:g}s")
    return seconds
