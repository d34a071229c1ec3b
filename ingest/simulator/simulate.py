"""Park simulator: realistic meter messages for the example park, with optional faults.

``generate(registry, start=..., end=...)`` yields ``SimMessage`` objects in the order a
park would send them (by ``sim_time``). Each meter reports every
``max(step_seconds, meter.interval_seconds)`` seconds in its *declared* unit:
cumulative meters send their register (usage / multiplier, wrapping at the declared
rollover, starting at a realistic nonzero value), interval meters send the amount used
since their previous reading. ``ground_truth(...)`` gives the usage the simulator
intended (canonical unit, after multiplier), so derived usage can be checked.
``publish(messages, host=..., port=...)`` sends them to an MQTT broker
(``parkcarbon.ingest.simulator.publish``). Everything is deterministic for a given seed.

Faults (``faults=``): reset, rollover, gap, duplicate, late, out_of_order, garbage;
see docs/counters_and_simulator.md for what each does.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from parkcarbon.ingest.errors import SimulatorError
from parkcarbon.ingest.simulator.loadshapes import rate_per_hour
from parkcarbon.ingest.simulator.publish import PublishStats, publish
from parkcarbon.registry import CounterType, Meter, MeterRole, Registry

__all__ = ["FAULTS", "PublishStats", "SimMessage", "SimTruth", "SimulatorError",
           "generate", "ground_truth", "publish"]

FAULTS = ("reset", "rollover", "gap", "duplicate", "late", "out_of_order", "garbage")
DUPLICATE_SHARE = 0.01  # share of single-reading messages sent twice
GAP_HOURS = 6  # a meter's silence (local 09:00-15:00, inside one local day)
LATE_DELAY = timedelta(hours=6)  # a held-back burst arrives this much later
LATE_READINGS = 8
SHUFFLED_READINGS = 12
NOISE = 0.03  # relative standard deviation of interval usage


@dataclass(frozen=True)
class SimMessage:
    """One MQTT message. ``topic`` is relative to the topic prefix:
    ``<enterprise_id>/<meter_id>``."""

    topic: str
    payload: bytes
    sim_time: datetime  # when the park sends it (UTC)
    kind: str  # 'reading' | 'batch' | 'garbage'
    meter_id: str | None = None
    readings: int = 1
    fault: str | None = None  # the fault this message carries, if any


@dataclass(frozen=True)
class SimTruth:
    """Intended usage per meter: (interval start, end, quantity after multiplier)."""

    intervals: dict[str, tuple[tuple[datetime, datetime, float], ...]]
    timezone: str

    def daily(self) -> dict[tuple[str, date], float]:
        """Usage per meter and local day of the park (interval start decides the day)."""
        tz = ZoneInfo(self.timezone)
        out: dict[tuple[str, date], float] = {}
        for meter_id, rows in self.intervals.items():
            for t0, _t1, qty in rows:
                key = (meter_id, t0.astimezone(tz).date())
                out[key] = out.get(key, 0.0) + qty
        return out

    def total(self, meter_id: str) -> float:
        return sum(q for _a, _b, q in self.intervals.get(meter_id, ()))


@dataclass
class _Series:
    meter: Meter
    times: list[datetime]
    values: list[float]  # shown values, meter unit
    truth: list[float]  # usage of the interval ending at times[i] (canonical, x multiplier)
    period: timedelta
    dropped: set[int]  # indices not sent (gap fault)


def _validate(start: datetime, end: datetime, step_seconds: int, faults: Collection[str]) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise SimulatorError("start and end must be timezone-aware")
    if end <= start:
        raise SimulatorError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if step_seconds <= 0 or 86400 % step_seconds:
        raise SimulatorError(f"step {step_seconds}s must divide a day (e.g. 900, 3600)")
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise SimulatorError(f"unknown fault(s): {', '.join(unknown)}",
                             hint=f"choose from {', '.join(FAULTS)}")


def _series(registry: Registry, start: datetime, end: datetime, step_seconds: int,
            faults: Collection[str], seed: int) -> list[_Series]:
    _validate(start, end, step_seconds, faults)
    park = registry.park
    tz = ZoneInfo(park.timezone)
    lat = park.latitude if park.latitude is not None else 41.68
    lon = park.longitude if park.longitude is not None else 82.96
    park_rng = np.random.default_rng([seed, 0])
    days = (end - start).days + 2
    clearness = park_rng.uniform(0.45, 1.0, size=days)  # park-wide cloudiness per day
    enterprises = {e.id: e for e in registry.enterprises}
    cumulative = [m for m in registry.meters if m.counter is CounterType.cumulative]
    plain = [m.id for m in cumulative if m.rollover is None and m.role is not MeterRole.onsite_pv]
    choice: list[int] = [int(x) for x in park_rng.permutation(len(plain))]
    reset_id = plain[choice[0]] if "reset" in faults and plain else None
    gap_id = plain[choice[1]] if "gap" in faults and len(plain) > 1 else None
    local_cache: dict[datetime, datetime] = {}
    out = []
    for index, meter in enumerate(registry.meters):
        rng = np.random.default_rng([seed, index + 1])
        ent = enterprises[meter.enterprise]
        period = timedelta(seconds=max(step_seconds, meter.interval_seconds))
        count = int((end - start) / period)
        times = [start + k * period for k in range(count + 1)]
        noise = np.clip(1 + NOISE * rng.standard_normal(len(times)), 0.85, 1.15)
        usage = [0.0]
        for k in range(1, len(times)):
            mid = times[k] - period / 2
            local = local_cache.get(mid) or local_cache.setdefault(mid, mid.astimezone(tz))
            clear = float(clearness[min((mid - start).days, days - 1)])
            rate = rate_per_hour(meter, ent, mid, local, lat, lon, clear)
            usage.append(rate * period.total_seconds() / 3600 * float(noise[k]))
        scale = meter.multiplier * meter.unit_factor  # meter unit -> canonical, x multiplier
        increments = [u / scale for u in usage]
        if meter.counter is CounterType.interval:
            values = [round(x, 3) for x in increments]
            truth = [v * scale for v in values]
        else:
            values, truth = _register(meter, increments, scale, rng, faults,
                                      reset_id == meter.id)
        dropped = _gap_indices(times, tz, start) if meter.id == gap_id else set()
        out.append(_Series(meter, times, values, truth, period, dropped))
    return out


def _register(meter: Meter, increments: list[float], scale: float, rng: np.random.Generator,
              faults: Collection[str], reset: bool) -> tuple[list[float], list[float]]:
    rollover = meter.rollover
    if rollover is not None and "rollover" in faults:
        third = sum(increments[: max(2, len(increments) // 3)])
        reg = rollover - third
    elif rollover is not None:
        reg = rollover * float(rng.uniform(0.05, 0.4))
    else:
        reg = float(rng.uniform(1e4, 5e5))
    reset_at = max(2, int(len(increments) * 0.4)) if reset else -1
    shown: list[float] = []
    truth: list[float] = []
    for k, inc in enumerate(increments):
        reg = inc if k == reset_at else reg + inc
        value = round(reg % rollover if rollover else reg, 3)
        if rollover is not None and value >= rollover:
            value = 0.0
        if k == 0:
            delta = 0.0
        elif k == reset_at:
            delta = value
        else:
            delta = value - shown[-1]
            if delta < 0 and rollover is not None:
                delta += rollover
        shown.append(value)
        truth.append(delta * scale)
    return shown, truth


def _gap_indices(times: list[datetime], tz: ZoneInfo, start: datetime) -> set[int]:
    """Readings strictly inside local 09:00-15:00 of the middle day (else mid-period)."""
    middle = times[len(times) // 2].astimezone(tz).date()
    lo = datetime(middle.year, middle.month, middle.day, 9, tzinfo=tz)
    hi = lo + timedelta(hours=GAP_HOURS)
    inside = {k for k, t in enumerate(times) if lo < t < hi}
    if not inside or min(inside) < 1 or max(inside) >= len(times) - 1:
        n = len(times)
        inside = set(range(n // 3, max(n // 3 + 1, n // 2))) if n > 4 else set()
    return inside


def _payload(ts: datetime, value: float, unit: str, tz: ZoneInfo) -> dict[str, object]:
    return {"ts": ts.astimezone(tz).isoformat(), "value": value, "unit": unit}


def generate(
    registry: Registry,
    *,
    start: datetime,
    end: datetime,
    step_seconds: int = 900,
    faults: Collection[str] = (),
    seed: int = 0,
) -> Iterator[SimMessage]:
    """Messages for every meter from ``start`` to ``end``, ordered by ``sim_time``."""
    series = _series(registry, start, end, step_seconds, faults, seed)
    tz = ZoneInfo(registry.park.timezone)
    rng = np.random.default_rng([seed, 10_000])
    messages: list[SimMessage] = []
    eligible = [s for s in series if len(s.times) > LATE_READINGS + SHUFFLED_READINGS + 4]
    picks: list[int] = [int(x) for x in rng.permutation(len(eligible))]
    late = eligible[picks[0]] if "late" in faults and eligible else None
    shuffled = eligible[picks[-1]] if "out_of_order" in faults and len(eligible) > 1 else None
    for s in series:
        m = s.meter
        topic = f"{m.enterprise}/{m.id}"
        first = 1 if m.counter is CounterType.interval else 0
        held: dict[int, str] = {}
        n = len(s.times)
        if s is late:
            held.update((k, "late") for k in range(n // 2, n // 2 + LATE_READINGS))
        if s is shuffled:
            base = max(first, (n * 3) // 5 - SHUFFLED_READINGS)
            held.update((k, "out_of_order") for k in range(base, base + SHUFFLED_READINGS))
        for k in range(first, n):
            if k in s.dropped or k in held:
                continue
            body = json.dumps(_payload(s.times[k], s.values[k], m.unit, tz),
                              ensure_ascii=False).encode()
            messages.append(SimMessage(topic, body, s.times[k], "reading", m.id))
            if "duplicate" in faults and rng.random() < DUPLICATE_SHARE:
                messages.append(SimMessage(topic, body, s.times[k], "reading", m.id,
                                           fault="duplicate"))
        for fault in ("late", "out_of_order"):
            ks = sorted(k for k, f in held.items() if f == fault)
            if not ks:
                continue
            if fault == "out_of_order":
                ks = [ks[i] for i in rng.permutation(len(ks))]
            sent = max(s.times[k] for k in ks) + (LATE_DELAY if fault == "late" else
                                                   timedelta(0))
            body = json.dumps({"readings": [_payload(s.times[k], s.values[k], m.unit, tz)
                                            for k in ks]}, ensure_ascii=False).encode()
            messages.append(SimMessage(topic, body, min(sent, end), "batch", m.id,
                                       readings=len(ks), fault=fault))
    if "garbage" in faults:
        messages += _garbage(registry, start, end, tz)
    messages.sort(key=lambda msg: msg.sim_time)
    yield from messages


def _garbage(registry: Registry, start: datetime, end: datetime, tz: ZoneInfo) -> list[SimMessage]:
    meter = registry.meters[0]
    topic = f"{meter.enterprise}/{meter.id}"
    ts = start.astimezone(tz).isoformat()
    bodies = [
        (topic, b'{"ts": "' + ts.encode() + b'", "value": '),  # truncated JSON
        (f"{meter.enterprise}/{meter.enterprise}-NO-SUCH-METER",
         json.dumps({"ts": ts, "value": 1.0, "unit": "kWh"}).encode()),
        (topic, json.dumps({"ts": ts, "value": 1.0, "unit": "kg"}).encode()),  # wrong unit
        (topic, json.dumps({"ts": ts, "value": "lots", "unit": meter.unit},
                           ensure_ascii=False).encode()),
        (topic, b"\xff\xfe not json at all"),
    ]
    span = end - start
    return [SimMessage(t, body, start + span * (i + 1) / (len(bodies) + 1), "garbage",
                       fault="garbage") for i, (t, body) in enumerate(bodies)]


def ground_truth(
    registry: Registry,
    *,
    start: datetime,
    end: datetime,
    step_seconds: int = 900,
    faults: Collection[str] = (),
    seed: int = 0,
) -> SimTruth:
    """The usage ``generate`` with the same arguments intends, per meter and interval."""
    intervals = {}
    for s in _series(registry, start, end, step_seconds, faults, seed):
        intervals[s.meter.id] = tuple(
            (s.times[k] - s.period, s.times[k], s.truth[k]) for k in range(1, len(s.times))
        )
    return SimTruth(intervals=intervals, timezone=registry.park.timezone)
