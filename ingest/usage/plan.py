"""Which meters ``derive_usage`` must recompute, and from where.

State per meter (table ``usage_derive_state``): ``watermark`` (the largest
``readings.received_at`` the last run could see), ``overlap_count`` (how many of the
meter's readings had ``received_at`` in (watermark - WATERMARK_OVERLAP, watermark]) and
``spec_hash`` (counter spec and declared replacements).

A meter is recomputed when its spec changed (in full), when it has readings received
after its watermark, or when the overlap count grew (a writer transaction that began
before the watermark committed after the last run). Otherwise it is skipped and only
its state advances. All counts and the new watermark come from one statement, so they
describe one snapshot of ``readings``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from parkcarbon.ingest.errors import DeriveError
from parkcarbon.ingest.usage import queries as Q
from parkcarbon.ingest.usage.counters import (
    CONTEXT_READINGS,
    WINDOW,
    CounterSpec,
    ReplacementSpec,
)
from parkcarbon.units import SLOT_SECONDS

# A writer transaction stamps received_at when it starts and may commit after a later
# one; readings received this long before the watermark are checked again each run.
# It must exceed the longest ingest transaction (ingest commits within a second).
WATERMARK_OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True)
class Plan:
    spec: CounterSpec
    replacements: tuple[ReplacementSpec, ...]
    spec_hash: str
    write_from: datetime | None  # first slot to write; None: the whole history
    load_from: datetime | None  # first reading to load; None: from the first one


@dataclass(frozen=True)
class MeterState:
    meter_id: str
    watermark: datetime | None
    overlap_count: int
    spec_hash: str


def load_specs(
    conn: psycopg.Connection, meter_ids: Sequence[str] | None = None
) -> dict[str, tuple[CounterSpec, tuple[ReplacementSpec, ...]]]:
    """Counter specs and declared replacements from the ``meters`` tables."""
    rows = conn.execute(
        Q.SELECT_COUNTER_SPECS, {"ids": None if meter_ids is None else list(meter_ids)}
    ).fetchall()
    reps: dict[str, list[ReplacementSpec]] = {}
    for meter_id, at, final, initial in conn.execute(Q.SELECT_REPLACEMENTS).fetchall():
        reps.setdefault(meter_id, []).append(ReplacementSpec(at, final, initial))
    out = {}
    for meter_id, ctype, mult, rollover, interval in rows:
        spec = CounterSpec(meter_id, ctype, mult, rollover, interval)
        out[meter_id] = (spec, tuple(reps.get(meter_id, ())))
    if meter_ids is not None:
        unknown = sorted(set(meter_ids) - set(out))
        if unknown:
            raise DeriveError(f"unknown meter(s): {', '.join(unknown)}",
                              hint="meters come from the registry: run `parkcarbon db migrate`")
    return out


def spec_hash(spec: CounterSpec, reps: tuple[ReplacementSpec, ...]) -> str:
    data = [spec.counter_type, spec.multiplier, spec.rollover_value, spec.interval_seconds,
            [(r.replaced_at.isoformat(), r.final_reading, r.initial_reading) for r in reps]]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def floor_slot(ts: datetime) -> datetime:
    epoch = ts.timestamp()
    return ts - timedelta(seconds=epoch - (epoch // SLOT_SECONDS) * SLOT_SECONDS)


def _nth_before(conn: psycopg.Connection, meter_id: str, ts: datetime, n: int,
                inclusive: bool) -> datetime | None:
    row = conn.execute(
        Q.select_nth_reading_before(inclusive=inclusive), (meter_id, ts, n)
    ).fetchone()
    return row[0] if row else None


def plan(
    conn: psycopg.Connection,
    specs: dict[str, tuple[CounterSpec, tuple[ReplacementSpec, ...]]],
    full: bool,
) -> tuple[dict[str, Plan], list[MeterState]]:
    """Plans for the meters to recompute, and the state every meter gets afterwards."""
    ids = list(specs)
    old = {
        r[0]: MeterState(r[0], r[1], r[2], r[3])
        for r in conn.execute(Q.SELECT_DERIVE_STATES, (ids,)).fetchall()
    }
    changes = {r[0]: r[1:] for r in conn.execute(
        Q.SELECT_CHANGES, {"ids": ids, "overlap": WATERMARK_OVERLAP}).fetchall()}
    plans: dict[str, Plan] = {}
    states: list[MeterState] = []
    for meter_id, (spec, reps) in specs.items():
        digest = spec_hash(spec, reps)
        wm, first_new, first_overlap, old_count, next_count = changes[meter_id]
        states.append(MeterState(meter_id, wm, next_count, digest))
        state = old.get(meter_id)
        if full or state is None or state.spec_hash != digest or state.watermark is None:
            plans[meter_id] = Plan(spec, reps, digest, None, None)
            continue
        first = first_new if old_count == state.overlap_count else first_overlap
        if first is None:
            continue
        # The interval ending at the first changed reading and WINDOW intervals before
        # it may change; their slots start at the floor of the reading before them.
        anchor = _nth_before(conn, meter_id, first, WINDOW, inclusive=False)
        if anchor is None:
            plans[meter_id] = Plan(spec, reps, digest, None, None)
            continue
        write_from = floor_slot(anchor)
        load_from = _nth_before(conn, meter_id, write_from, CONTEXT_READINGS, inclusive=True)
        plans[meter_id] = Plan(spec, reps, digest, write_from, load_from)
    return plans, states
