"""Periods of the park's local calendar, and the one clock everything reads.

A period is a span of local days ``[start, end)`` in the park timezone: a year
(``2026``), a month (``2026-01``) or a day (``2026-01-15``). Storage is UTC;
``Period.utc_bounds`` turns a period into the UTC instants of its local midnights.
``utc_now()`` is the wall clock every command and job starts from (jobs get theirs
injected through the scheduler, tests pass their own ``now``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from parkcarbon.errors import PeriodError, UsageError

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

PERIOD_HINT = "use YYYY, YYYY-MM or YYYY-MM-DD, e.g. --period 2026-01"


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    """The park's local date at ``now`` (default: the current time)."""
    return (now or utc_now()).astimezone(tz).date()


def local_midnight_utc(value: str, tz: ZoneInfo, option: str) -> datetime:
    """The UTC instant of local midnight starting day ``value`` (YYYY-MM-DD); a bad
    date is a ``UsageError`` naming ``option``."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """A span of local days ``[start, end)`` in the park timezone, named like ``2026-01``."""

    label: str
    start: date
    end: date
    kind: str  # "year" | "month" | "day"

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants of the local midnight starting and ending the period."""
        t0 = datetime(self.start.year, self.start.month, self.start.day, tzinfo=tz)
        t1 = datetime(self.end.year, self.end.month, self.end.day, tzinfo=tz)
        return t0.astimezone(ZoneInfo("UTC")), t1.astimezone(ZoneInfo("UTC"))

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def parse_period(text: str) -> Period:
    """``2026`` (year), ``2026-01`` (month) or ``2026-01-15`` (day)."""
    m = _PERIOD.match(text.strip())
    if not m:
        raise PeriodError(
            f"period {text!r} is not understood",
            hint=PERIOD_HINT,
        )
    year, month, day = (int(g) if g else None for g in m.groups())
    assert year is not None
    try:
        if month is None:
            return Period(text, date(year, 1, 1), date(year + 1, 1, 1), "year")
        if day is None:
            start = date(year, month, 1)
            end = date(year + (month == 12), month % 12 + 1, 1)
            return Period(text, start, end, "month")
        start = date(year, month, day)
        return Period(text, start, start + timedelta(days=1), "day")
    except ValueError as exc:
        raise PeriodError(
            f"period {text!r}: {exc}", hint=PERIOD_HINT
        ) from exc
