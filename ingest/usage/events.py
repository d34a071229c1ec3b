"""Read what ``derive_usage`` found: counter events, and meters silent right now.

What ``parkcarbon usage events`` and ``parkcarbon usage gaps`` list; the SQL is in
``parkcarbon.ingest.usage.queries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from parkcarbon.ingest.usage import queries as Q


@dataclass(frozen=True)
class MeterEvent:
    """One row of ``meter_events`` (see docs/counters_and_simulator.md)."""

    meter_id: str
    kind: str
    ts_start: datetime | None  # start of the interval concerned
    ts: datetime  # end of the interval concerned
    value_before: float | None
    value_after: float | None
    quantity: float | None  # usage given to the interval, after the multiplier
    detail: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SilentMeter:
    """An active meter with no reading for more than twice its interval."""

    meter_id: str
    last_reading: datetime | None  # None: it never reported

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_events(
    conn: psycopg.Connection,
    *,
    kinds: Sequence[str] | None = None,
    meter_id: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[MeterEvent]:
    """Events in time order (then meter, kind); ``None`` filters mean all."""
    rows = conn.execute(Q.SELECT_EVENTS, {
        "kinds": None if kinds is None else list(kinds), "meter": meter_id, "since": since,
        "limit": limit,
    }).fetchall()
    return [MeterEvent(*r) for r in rows]


def silent_meters(conn: psycopg.Connection, meter_id: str | None = None) -> list[SilentMeter]:
    """Active meters with no reading for more than 2 x interval_seconds (or none at all),
    as of the database's ``now()``."""
    return [SilentMeter(*r) for r in conn.execute(Q.SELECT_SILENT_METERS,
                                                  {"meter": meter_id}).fetchall()]
