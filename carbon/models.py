"""Small value objects of carbon accounting: periods and the result of a refresh."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from parkcarbon.carbon.errors import PeriodError

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

# Scope labels stored in emissions_daily.scope.
SCOPE_1 = "1"
SCOPE_2 = "2"
SCOPE_3 = "3"  # water: informational, never added to Scope 1+2
SCOPE_PV = "pv"  # on-site PV generation: zero emission, counts as energy consumed
SCOPE_EXPORT = "export"  # power fed to the grid: does not reduce Scope 2


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
            hint="use YYYY, YYYY-MM or YYYY-MM-DD, e.g. --period 2026-01",
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
            f"period {text!r}: {exc}", hint="use YYYY, YYYY-MM or YYYY-MM-DD, e.g. --period 2026-01"
        ) from exc


@dataclass(frozen=True)
class RefreshResult:
    """What one accounting run did."""

    run_id: int
    days_recomputed: int  # (meter, local day) rows written: new or changed
    restated: int  # stored figures that changed (restatements logged)
    factors_synced: int  # new factor versions stored
    reason: str
    seconds: float
    days_checked: int = 0  # (meter, local day) pairs recomputed and compared
    days_removed: int = 0  # stored rows whose usage went away (or meter no longer counted)
    days_filled: int = 0  # rows of a day still filling in (partial before): not restated
