"""Readings -> ``usage`` slots and ``meter_events``, incremental and idempotent.

``derive_usage(conn)`` finds the meters whose readings arrived since the last run
(``readings.received_at`` above the meter's watermark; see ``plan``),
recomputes each one from a little before its earliest new reading to its latest
reading with ``parkcarbon.ingest.usage.counters.derive_slots``, and writes only what changed:
a slot whose quantity and estimated flag are unchanged keeps its ``derived_at``.
Each changed stretch is returned (``DeriveResult.changed``) and recorded in
``usage_changes`` so the carbon module can restate those periods.

Because a recomputation starts ``counters.CONTEXT_READINGS`` readings before the first
slot it writes, an incremental run writes exactly what a full run (``full=True``)
would: the result never depends on the order in which readings arrived.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from parkcarbon.db import LockKey
from parkcarbon.ingest.errors import DeriveError
from parkcarbon.ingest.usage import queries as Q
from parkcarbon.ingest.usage.counters import derive_epoch
from parkcarbon.ingest.usage.plan import WATERMARK_OVERLAP, Plan, load_specs, plan
from parkcarbon.ingest.usage.sequence import sequence_gaps
from parkcarbon.units import SLOT_SECONDS

__all__ = ["WATERMARK_OVERLAP", "ChangedRange", "DeriveError", "DeriveResult", "derive_usage",
           "load_specs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangedRange:
    """Slots of one meter whose usage was written or removed by a run."""

    meter_id: str
    first_slot: datetime  # slot start, inclusive
    last_slot: datetime  # slot start, inclusive
    slots: int


@dataclass(frozen=True)
class DeriveResult:
    meters: int  # meters recomputed
    readings_used: int
    slots_written: int  # inserted or updated usage rows
    slots_deleted: int
    events_by_kind: dict[str, int]  # events in the recomputed ranges, by kind
    changed: tuple[ChangedRange, ...]
    seconds: float

    @property
    def changed_from(self) -> datetime | None:
        """Earliest changed slot of any meter (None: nothing changed)."""
        return min((c.first_slot for c in self.changed), default=None)

    def as_dict(self) -> dict[str, object]:
        return {
            "meters": self.meters,
            "readings_used": self.readings_used,
            "slots_written": self.slots_written,
            "slots_deleted": self.slots_deleted,
            "events_by_kind": dict(sorted(self.events_by_kind.items())),
            "changed_from": self.changed_from.isoformat() if self.changed_from else None,
            "changed": [
                {"meter_id": c.meter_id, "first_slot": c.first_slot.isoformat(),
                 "last_slot": c.last_slot.isoformat(), "slots": c.slots}
                for c in self.changed
            ],
            "seconds": round(self.seconds, 3),
        }


def derive_usage(
    conn: psycopg.Connection,
    *,
    meter_ids: Sequence[str] | None = None,
    full: bool = False,
) -> DeriveResult:
    """Bring ``usage`` and ``meter_events`` up to date with ``readings``.

    Incremental unless ``full``. Runs in ``conn.transaction()``: committed on return,
    or a savepoint when the caller already has a transaction open. Safe to call
    concurrently (runs are serialised by an advisory lock) and to repeat.
    """
    started = time.monotonic()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(Q.LOCK_DERIVE, (LockKey.DERIVE,))
        plans, states = plan(conn, load_specs(conn, meter_ids), full)
        usage_rows, event_rows, readings_used = _compute(conn, plans)
        planned = time.monotonic()
        deleted, written = _write(cur, plans, usage_rows, event_rows)
        changed = _ranges(deleted + written)
        cur.executemany(
            Q.INSERT_USAGE_CHANGE,
            [(c.meter_id, c.first_slot, c.last_slot, c.slots) for c in changed],
        )
        cur.executemany(Q.SAVE_DERIVE_STATE, [(s.meter_id, s.watermark, s.overlap_count,
                                               s.spec_hash) for s in states])
    result = DeriveResult(
        meters=len(plans), readings_used=readings_used, slots_written=len(written),
        slots_deleted=len(deleted), events_by_kind=dict(Counter(r[1] for r in event_rows)),
        changed=tuple(changed), seconds=time.monotonic() - started,
    )
    log.debug("derive: read and computed in %.2fs, wrote in %.2fs", planned - started,
              time.monotonic() - planned)
    # A run that changed nothing (the scheduler's every minute, a read with no new
    # readings) is DEBUG: the log shows work, not polling.
    level = logging.INFO if result.slots_written or result.slots_deleted else logging.DEBUG
    log.log(level, "derived usage: %d meters, %d readings, %d slots written, %d removed in "
            "%.2fs", result.meters, result.readings_used, result.slots_written,
            result.slots_deleted, result.seconds)
    return result


def _compute(conn: psycopg.Connection, plans: dict[str, Plan]
             ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Derive every planned meter; keep the slots and events from its write_from on."""
    usage_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    readings_used = 0
    for meter_id, p in plans.items():
        rows = conn.execute(
            Q.SELECT_READINGS_FROM, (meter_id, p.load_from, p.load_from)
        ).fetchall()
        slots, events, used = derive_epoch(rows, p.spec, p.replacements)
        events += sequence_gaps(conn.execute(
            Q.SELECT_SEQ_FROM, (meter_id, p.load_from, p.load_from)).fetchall())
        readings_used += used
        wf = p.write_from
        first_slot = -(2**62) if wf is None else int(wf.timestamp()) // SLOT_SECONDS
        usage_rows += [(meter_id, k, q, e) for k, q, e in slots if k >= first_slot]
        event_rows += [(meter_id, e.kind, e.ts, e.ts_start, e.value_before, e.value_after,
                        e.quantity, json.dumps(e.detail))
                       for e in events if wf is None or e.ts >= wf]
    return usage_rows, event_rows, readings_used


def _write(cur: psycopg.Cursor[Any], plans: dict[str, Plan], usage_rows: list[tuple[Any, ...]],
           event_rows: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """Make usage and meter_events match the new rows in the planned ranges."""
    cur.execute(Q.CREATE_DERIVE_TABLES)
    with cur.copy(Q.COPY_DERIVE_RANGES) as cp:
        for meter_id, p in plans.items():
            cp.write_row((meter_id, p.write_from))
    with cur.copy(Q.COPY_DERIVE_USAGE) as cp:
        for row in usage_rows:
            cp.write_row(row)
    with cur.copy(Q.COPY_DERIVE_EVENTS) as cp:
        for row in event_rows:
            cp.write_row(row)
    cur.execute(Q.ANALYZE_DERIVE_TABLES)
    deleted = cur.execute(Q.DELETE_STALE_USAGE).fetchall()
    written = cur.execute(Q.UPSERT_USAGE).fetchall()
    cur.execute(Q.DELETE_STALE_EVENTS)
    cur.execute(Q.UPSERT_EVENTS)
    return deleted, written


def _ranges(rows: list[tuple[str, datetime]]) -> list[ChangedRange]:
    by_meter: dict[str, list[datetime]] = {}
    for meter_id, ts in rows:
        by_meter.setdefault(meter_id, []).append(ts)
    return [ChangedRange(m, min(ts), max(ts), len(set(ts)))
            for m, ts in sorted(by_meter.items())]


def derive_committed(
    settings_or_dsn: object,
    *,
    meter_ids: Sequence[str] | None = None,
    full: bool = False,
) -> DeriveResult:
    """``derive_usage`` in a transaction of its own, committed, then the rollups refreshed.

    What the scheduler, the CLI and the demo call. From the day before the earliest
    changed slot, the continuous aggregates are refreshed (timescale mode; plain mode:
    views, always exact) and the usage-quality rollup per enterprise and day is summed
    again (both modes), so ``usage_hourly``, ``usage_daily``, ``usage_day_quality`` and
    ``usage_quality_enterprise_day`` are exact as soon as this returns. The window is
    recorded in the derivation's transaction, so a process that dies between the commit
    and the refresh leaves it for the next call.
    """
    from datetime import timedelta

    from parkcarbon.db import connect
    from parkcarbon.schema import refresh_rollups
    from parkcarbon.schema.rollups import mark_rollups_due, rollups_due

    with connect(settings_or_dsn) as conn:
        result = derive_usage(conn, meter_ids=meter_ids, full=full)
        if result.changed_from is not None:  # committed with the usage it covers
            mark_rollups_due(conn, result.changed_from - timedelta(days=1))
        conn.commit()
        due = rollups_due(conn)  # this derivation's, and any a dead process left
        if due is not None:
            refresh_rollups(conn, due, None)
    return result
