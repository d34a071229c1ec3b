"""Meter readings -> 15-minute usage slots and events. Pure: no database, no clock.

``derive_slots(readings, spec, replacements)`` takes the readings of one meter (any
order, duplicates allowed), its declared counter spec and declared replacements, and
returns usage per 15-minute slot (canonical unit, multiplier applied) plus events.
The readings are sorted first, so the answer never depends on arrival order.

Rules (documented for users in docs/counters_and_simulator.md):

* Cumulative register, readings (t0, v0) -> (t1, v1): usage (v1 - v0) * multiplier,
  spread over (t0, t1] in proportion to time overlap with each slot.
* Declared replacement in (t0, t1]: (final - v0) before it + (v1 - initial) after it
  (a reading stamped at or after the replacement time is from the new register).
* Drop with a declared rollover R: usage R - v0 + v1 when that is plausible (rate not
  absurd against the neighbours, or below R/2 when there is nothing to compare with).
* Any other drop (undeclared reset) and any absurd jump (rate > ABSURD_FACTOR x the
  90th percentile of the neighbouring intervals' rates): an event, the new value
  becomes the baseline, and the interval gets the neighbours' median rate, estimated.
* Spacing > GAP_FACTOR x interval_seconds: a ``gap`` event; the usage across it is
  spread evenly and marked estimated.
* Interval meters: a reading is the amount in (previous reading, ts] when the spacing
  is regular, else in (ts - interval_seconds, ts]; the uncovered stretch is a gap,
  filled at the neighbours' median rate and marked estimated (never zero).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from parkcarbon.units import SLOT_SECONDS

GAP_FACTOR = 2.0  # spacing above GAP_FACTOR x interval_seconds is a gap
INTERVAL_JITTER = 1.5  # interval meters: spacing up to 1.5 x interval is regular
ABSURD_FACTOR = 20.0  # rate above 20 x neighbours' 90th percentile is absurd
WINDOW = 48  # neighbour intervals each side used for the reference rates
# Context readings a partial recomputation must load before the first slot it writes,
# so that every written slot sees exactly the windows a full recomputation would.
CONTEXT_READINGS = WINDOW + 3


@dataclass(frozen=True)
class CounterSpec:
    """What derivation needs to know about a meter (canonical units, before multiplier)."""

    meter_id: str
    counter_type: str = "cumulative"  # 'cumulative' | 'interval'
    multiplier: float = 1.0
    rollover_value: float | None = None
    interval_seconds: int = 900


@dataclass(frozen=True)
class ReplacementSpec:
    replaced_at: datetime
    final_reading: float
    initial_reading: float


@dataclass(frozen=True)
class Slot:
    ts: datetime  # slot start, UTC
    quantity: float  # canonical unit, after multiplier
    estimated: bool


@dataclass(frozen=True)
class Event:
    """Something derivation noticed. ``ts`` is the end of the interval concerned."""

    kind: str  # gap, reset, absurd, rollover, replacement, duplicate, conflict, negative
    ts: datetime
    ts_start: datetime | None = None
    value_before: float | None = None
    value_after: float | None = None
    quantity: float | None = None  # usage attributed to the interval (after multiplier)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Derivation:
    slots: list[Slot]
    events: list[Event]
    readings_used: int


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def dedupe(
    readings: Iterable[tuple[float, float]],
) -> tuple[list[tuple[float, float]], list[Event]]:
    """Sort (epoch seconds, value) pairs by time; drop exact duplicates; keep the largest
    value of a conflict."""
    by_ts: dict[float, list[float]] = {}
    for epoch, value in readings:
        by_ts.setdefault(epoch, []).append(float(value))
    out: list[tuple[float, float]] = []
    events: list[Event] = []
    for epoch in sorted(by_ts):
        values = sorted(by_ts[epoch])
        if len(values) > 1:
            distinct = sorted(set(values))
            kind = "duplicate" if len(distinct) == 1 else "conflict"
            events.append(Event(kind, _dt(epoch), value_after=distinct[-1],
                                detail={"copies": len(values), "values": distinct}))
        out.append((epoch, values[-1]))
    return out, events


def reference_rates(rates: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """(90th percentile, median) of the finite rates within +-window positions.

    NaN where the window holds no finite rate. Lower nearest-rank, no interpolation,
    so the same window content gives bit-identical results in any recomputation.
    """
    n = len(rates)
    if n == 0:
        return np.empty(0), np.empty(0)
    pad = np.full(window, np.nan)
    padded = np.concatenate([pad, rates, pad])
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)
    ordered = np.sort(view, axis=1)  # NaN sorts last
    count = np.isfinite(view).sum(axis=1)
    rows = np.arange(n)
    safe = np.maximum(count - 1, 0)
    p90 = ordered[rows, (safe * 9) // 10]
    med = ordered[rows, safe // 2]
    empty = count == 0
    p90[empty] = np.nan
    med[empty] = np.nan
    return p90, med


class _Slots:
    """Accumulates quantities into 15-minute slots, chronologically."""

    def __init__(self) -> None:
        self.qty: dict[int, float] = {}
        self.est: dict[int, bool] = {}

    def spread(self, t0: float, t1: float, quantity: float, estimated: bool) -> None:
        if t1 <= t0:
            if quantity:  # a zero-length piece (reading exactly at a replacement)
                self._add(math.ceil(t0 / SLOT_SECONDS) - 1, quantity, estimated)
            return
        first = int(t0 // SLOT_SECONDS)
        last = math.ceil(t1 / SLOT_SECONDS) - 1
        if first == last:
            self._add(first, quantity, estimated)
            return
        span = t1 - t0
        for k in range(first, last + 1):
            lo = max(t0, k * SLOT_SECONDS)
            hi = min(t1, (k + 1) * SLOT_SECONDS)
            if hi > lo:
                self._add(k, quantity * (hi - lo) / span, estimated)

    def _add(self, k: int, quantity: float, estimated: bool) -> None:
        self.qty[k] = self.qty.get(k, 0.0) + quantity
        self.est[k] = self.est.get(k, False) or estimated

    def result(self) -> list[tuple[int, float, bool]]:
        """(slot number = epoch // SLOT_SECONDS, quantity, estimated), in time order."""
        return [(k, self.qty[k], self.est[k]) for k in sorted(self.qty)]


def _estimate(med: float, seconds: float) -> float:
    return 0.0 if not math.isfinite(med) else float(max(med, 0.0)) * seconds


def _is_absurd(rate: float, p90: float) -> bool:
    return math.isfinite(p90) and p90 > 0 and rate > ABSURD_FACTOR * p90


def derive_slots(
    readings: Iterable[tuple[datetime, float]],
    spec: CounterSpec,
    replacements: Sequence[ReplacementSpec] = (),
) -> Derivation:
    """Usage slots and events for one meter. Same input set -> identical output."""
    slots, events, used = derive_epoch(
        ((ts.timestamp(), value) for ts, value in readings), spec, replacements)
    return Derivation(slots=[Slot(_dt(k * SLOT_SECONDS), q, e) for k, q, e in slots],
                      events=events, readings_used=used)


def derive_epoch(
    readings: Iterable[tuple[float, float]],
    spec: CounterSpec,
    replacements: Sequence[ReplacementSpec] = (),
) -> tuple[list[tuple[int, float, bool]], list[Event], int]:
    """``derive_slots`` on (epoch seconds, value) pairs, returning slots as
    (slot number, quantity, estimated), slot number = slot start epoch // SLOT_SECONDS.
    The fast path for bulk derivation."""
    points, events = dedupe(readings)
    if spec.counter_type == "interval":
        slots, more = _interval(points, spec)
    else:
        slots, more = _cumulative(points, spec, replacements)
    return slots, events + more, len(points)


def _cumulative(
    points: list[tuple[float, float]],
    spec: CounterSpec,
    replacements: Sequence[ReplacementSpec],
) -> tuple[list[tuple[int, float, bool]], list[Event]]:
    n = len(points)
    reps = sorted((r.replaced_at.timestamp(), r.final_reading, r.initial_reading)
                  for r in replacements)
    mult = spec.multiplier
    # Per interval i (points[i-1] -> points[i]): register pieces and a raw rate.
    pieces: list[list[tuple[float, float, float]] | None] = [None] * n
    rates = np.full(n, np.nan)
    for i in range(1, n):
        (t0, v0), (t1, v1) = points[i - 1], points[i]
        inside = [r for r in reps if t0 < r[0] <= t1]
        if inside:
            segs, start, base = [], t0, v0
            for at, final, initial in inside:
                segs.append((start, at, final - base))
                start, base = at, initial
            segs.append((start, t1, v1 - base))
            pieces[i] = segs
            total = sum(s[2] for s in segs)
        else:
            total = v1 - v0
            pieces[i] = [(t0, t1, total)]
        if total >= 0:
            rates[i] = total / (t1 - t0)
    p90, med = reference_rates(rates)
    acc, events = _Slots(), []
    expected = spec.interval_seconds
    for i in range(1, n):
        (t0, v0), (t1, v1) = points[i - 1], points[i]
        dt = t1 - t0
        segs = pieces[i] or []
        gap = dt > GAP_FACTOR * expected
        replaced = len(segs) > 1
        tol = 1e-9 * max(1.0, abs(v0))
        anomaly: str | None = None
        raw = sum(s[2] for s in segs)
        given = max(raw, 0.0) * mult  # usage the interval receives
        if replaced and any(s[2] < -tol for s in segs):
            anomaly = "replacement_mismatch"
        elif raw >= -tol:
            if _is_absurd(max(raw, 0.0) / dt, p90[i]):
                anomaly = "absurd"
        elif spec.rollover_value is not None and v0 <= spec.rollover_value:
            wrap = spec.rollover_value - v0 + v1
            ref = p90[i]
            plausible = (not _is_absurd(wrap / dt, ref)) if (
                math.isfinite(ref) and ref > 0) else wrap < spec.rollover_value / 2
            if plausible:
                given = wrap * mult
                acc.spread(t0, t1, given, gap)
                events.append(Event("rollover", _dt(t1), _dt(t0), v0, v1, wrap * mult,
                                    {"rollover_value": spec.rollover_value}))
            else:
                anomaly = "reset"
        else:
            anomaly = "reset"
        if anomaly is not None:
            estimate = given = _estimate(med[i], dt) * mult
            acc.spread(t0, t1, estimate, True)
            events.append(Event(anomaly, _dt(t1), _dt(t0), v0, v1, estimate, {
                "raw_delta": raw * mult, "reference_rate_per_hour": _per_hour(p90[i], mult),
                "estimated": True}))
        elif raw >= -tol:
            for a, b, q in segs:
                acc.spread(a, b, max(q, 0.0) * mult, gap)
            if replaced:
                events.append(Event("replacement", _dt(t1), _dt(t0), v0, v1,
                                    max(raw, 0.0) * mult,
                                    {"replaced_at": [_dt(s[0]).isoformat()
                                                     for s in segs[1:]]}))
        if gap:
            events.append(Event("gap", _dt(t1), _dt(t0), v0, v1, given, {
                "seconds": dt, "expected_interval_seconds": expected, "estimated": True}))
    return acc.result(), events


def _per_hour(rate_per_second: float, mult: float) -> float | None:
    return None if not math.isfinite(rate_per_second) else float(rate_per_second) * 3600 * mult


def _interval(
    points: list[tuple[float, float]], spec: CounterSpec
) -> tuple[list[tuple[int, float, bool]], list[Event]]:
    n = len(points)
    expected = float(spec.interval_seconds)
    mult = spec.multiplier
    starts = np.empty(n)
    rates = np.full(n, np.nan)
    for i, (t, v) in enumerate(points):
        prev = points[i - 1][0] if i else -math.inf
        start = prev if t - prev <= INTERVAL_JITTER * expected else t - expected
        starts[i] = start
        if v >= 0:
            rates[i] = v / (t - start)
    p90, med = reference_rates(rates)
    acc, events = _Slots(), []
    for i, (t, v) in enumerate(points):
        start = float(starts[i])
        if i and start > points[i - 1][0]:
            prev = points[i - 1][0]
            fill = _estimate(med[i], start - prev) * mult
            acc.spread(prev, start, fill, True)
            events.append(Event("gap", _dt(start), _dt(prev), points[i - 1][1], None, fill, {
                "seconds": start - prev, "expected_interval_seconds": spec.interval_seconds,
                "estimated": True}))
        if v < 0 or _is_absurd(v / (t - start), p90[i]):
            estimate = _estimate(med[i], t - start) * mult
            acc.spread(start, t, estimate, True)
            events.append(Event("negative" if v < 0 else "absurd", _dt(t), _dt(start), None, v,
                                estimate, {"raw_delta": v * mult, "estimated": True,
                                           "reference_rate_per_hour": _per_hour(p90[i], mult)}))
        else:
            acc.spread(start, t, v * mult, False)
    return acc.result(), events
