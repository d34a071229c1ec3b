"""What each rule kind measures: one statement per rule for all its subjects.

``observe(conn, rule, subjects, now, tz)`` returns ``{subject: Observation}`` with the
value the state machine compares (None: no data). Meter subjects are the registry's
meters the rule selects (``enterprises``, ``meters``, ``carriers``); enterprise
subjects aggregate their meters in Python from the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from parkcarbon.alerts import queries as Q
from parkcarbon.alerts.constants import SLOT_SECONDS
from parkcarbon.alerts.models import (
    AnyRule,
    BaselineRule,
    CarbonBudgetRule,
    CompletenessRule,
    CounterAnomalyRule,
    DeadLetterRule,
    IngestIncidentRule,
    Observation,
    OfflineRule,
    ThresholdRule,
)
from parkcarbon.registry import Meter, Registry

PARK = "PARK"


@dataclass(frozen=True)
class Context:
    """What sources need besides the connection: the registry, the clock, the park's
    timezone and (for carbon budgets) the settings."""

    registry: Registry
    now: datetime
    tz: ZoneInfo
    settings: Any = None


def slot_floor(t: datetime) -> datetime:
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % SLOT_SECONDS, tz=t.tzinfo)


def selected_meters(rule: AnyRule, registry: Registry) -> list[Meter]:
    out = []
    for m in registry.meters:
        if rule.enterprises and m.enterprise not in rule.enterprises:
            continue
        if rule.meters and m.id not in rule.meters:
            continue
        if rule.carriers and m.carrier.value not in rule.carriers:
            continue
        out.append(m)
    return out


def observe(conn: psycopg.Connection, rule: AnyRule, ctx: Context) -> dict[str, Observation]:
    """Observations of every subject of ``rule`` at ``ctx.now``."""
    kind = getattr(rule, "kind")  # noqa: B009
    fn = _SOURCES[kind]
    return fn(conn, rule, ctx)


def _by_meter(meters: Sequence[Meter], values: dict[str, float | None],
              detail: dict[str, dict[str, Any]] | None = None) -> dict[str, Observation]:
    detail = detail or {}
    return {
        m.id: Observation(m.id, m.enterprise, m.id, values.get(m.id), detail.get(m.id, {}))
        for m in meters
    }


def _by_enterprise(meters: Sequence[Meter], values: dict[str, float | None]
                   ) -> dict[str, Observation]:
    sums: dict[str, float | None] = {}
    for m in meters:
        v = values.get(m.id)
        if v is not None:
            sums[m.enterprise] = (sums.get(m.enterprise) or 0.0) + v
        else:
            sums.setdefault(m.enterprise, None)
    return {e: Observation(e, e, None, v) for e, v in sums.items()}


def _threshold(conn: psycopg.Connection, rule: Any, ctx: Context) -> dict[str, Observation]:
    r: ThresholdRule = rule
    meters = selected_meters(r, ctx.registry)
    t1 = slot_floor(ctx.now)
    t0 = t1 - timedelta(seconds=r.window)
    rows = conn.execute(Q.USAGE_WINDOW, {"meters": [m.id for m in meters], "t0": t0,
                                         "t1": t1}).fetchall()
    hours = r.window / 3600.0
    values: dict[str, float | None] = {
        mid: (float(total) / hours if r.metric == "rate" else float(total))
        for mid, total, _ in rows
    }
    if r.subject == "enterprise":
        return _by_enterprise(meters, values)
    return _by_meter(meters, values, {mid: {"window_end": t1.isoformat()} for mid in values})


def _baseline(conn: psycopg.Connection, rule: Any, ctx: Context) -> dict[str, Observation]:
    r: BaselineRule = rule
    meters = selected_meters(r, ctx.registry)
    t1 = slot_floor(ctx.now)
    t0 = t1 - timedelta(seconds=r.window)
    starts = [t0 - timedelta(weeks=k) for k in range(r.weeks + 1)]
    rows = conn.execute(Q.USAGE_WINDOWS, {
        "starts": starts, "length": timedelta(seconds=r.window),
        "meters": [m.id for m in meters]}).fetchall()
    # Only complete windows count (every 15-minute slot present): a week before the
    # data starts, or a window half filled by late data, is no baseline at all, never
    # a zero that turns normal usage into a spike.
    slots = int(r.window) // SLOT_SECONDS
    complete: dict[tuple[str, int], float] = {
        (mid, int(k)): float(total) for mid, k, total, n in rows if int(n) >= slots}
    keys = (lambda m: m.enterprise) if r.subject == "enterprise" else (lambda m: m.id)
    members: dict[str, list[Meter]] = defaultdict(list)
    for m in meters:
        members[keys(m)].append(m)
    out = {}
    for key, ms in members.items():
        now_ok = all((m.id, 1) in complete for m in ms)
        weeks = [k for k in range(2, r.weeks + 2)
                 if all((m.id, k) in complete for m in ms)]
        current = sum(complete[(m.id, 1)] for m in ms) if now_ok else None
        base = (sum(complete[(m.id, k)] for m in ms for k in weeks) / r.weeks
                if len(weeks) == r.weeks else None)
        value = None
        if current is not None and base is not None and base > max(r.min_baseline, 0.0):
            value = current / base
        first = ms[0]
        out[key] = Observation(
            key, first.enterprise, None if r.subject == "enterprise" else first.id, value,
            {"current": current, "baseline": base, "weeks": r.weeks,
             "weeks_complete": len(weeks), "window_end": t1.isoformat()})
    return out


def _offline(conn: psycopg.Connection, rule: Any, ctx: Context) -> dict[str, Observation]:
    r: OfflineRule = rule
    meters = selected_meters(r, ctx.registry)
    found = conn.execute(Q.LAST_READING, {"meters": [m.id for m in meters], "t": ctx.now})
    rows: dict[str, datetime | None] = dict(found.fetchall())
    values: dict[str, float | None] = {}
    detail: dict[str, dict[str, Any]] = {}
    for m in meters:
        last = rows.get(m.id)
        if last is not None:
            values[m.id] = (ctx.now - last).total_seconds() / m.interval_seconds
            detail[m.id] = {"last_reading": last.isoformat(),
                            "interval_seconds": m.interval_seconds}
    return _by_meter(meters, values, detail)


def last_local_day(now: datetime, tz: ZoneInfo) -> tuple[date, datetime, datetime]:
    """The last complete local day before ``now`` and its UTC bounds."""
    day = now.astimezone(tz).date() - timedelta(days=1)
    t0 = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    t1 = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return day, t0, t1


def _completeness(conn: psycopg.Connection, rule: Any, ctx: Context
                  ) -> dict[str, Observation]:
    r: CompletenessRule = rule
    meters = selected_meters(r, ctx.registry)
    day, t0, t1 = last_local_day(ctx.now, ctx.tz)
    expected = int((t1 - t0).total_seconds()) // SLOT_SECONDS
    rows = {mid: int(measured) for mid, measured, _ in conn.execute(
        Q.MEASURED_SLOTS, {"meters": [m.id for m in meters], "t0": t0, "t1": t1})}
    if r.subject == "enterprise":
        measured: dict[str, int] = defaultdict(int)
        count: dict[str, int] = defaultdict(int)
        for m in meters:
            measured[m.enterprise] += rows.get(m.id, 0)
            count[m.enterprise] += 1
        return {e: Observation(e, e, None, measured[e] / (expected * count[e]),
                               {"day": day.isoformat(), "measured_slots": measured[e],
                                "expected_slots": expected * count[e]})
                for e in count}
    return {m.id: Observation(m.id, m.enterprise, m.id, rows.get(m.id, 0) / expected,
                              {"day": day.isoformat(), "measured_slots": rows.get(m.id, 0),
                               "expected_slots": expected})
            for m in meters}


def _counter(conn: psycopg.Connection, rule: Any, ctx: Context) -> dict[str, Observation]:
    r: CounterAnomalyRule = rule
    meters = selected_meters(r, ctx.registry)
    rows = conn.execute(Q.METER_EVENTS, {
        "meters": [m.id for m in meters], "kinds": list(r.events),
        "t0": ctx.now - timedelta(seconds=r.window), "t1": ctx.now}).fetchall()
    values: dict[str, float | None] = {m.id: 0.0 for m in meters}
    detail = {}
    for mid, n, kinds, last in rows:
        values[mid] = float(n)
        detail[mid] = {"events": list(kinds), "last_event": last.isoformat()}
    return _by_meter(meters, values, detail)


def _dead_letters(conn: psycopg.Connection, rule: Any, ctx: Context
                  ) -> dict[str, Observation]:
    r: DeadLetterRule = rule
    ids = [e.id for e in ctx.registry.enterprises
           if not r.enterprises or e.id in r.enterprises]
    rows = {e: (n, reasons) for e, n, reasons in conn.execute(
        Q.DEAD_LETTERS_PER_ENTERPRISE, {"t0": ctx.now - timedelta(hours=1), "t1": ctx.now})}
    return {e: Observation(e, e, None, float(rows[e][0]) if e in rows else 0.0,
                           {"reasons": list(rows[e][1])} if e in rows else {})
            for e in ids}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _ingest_incidents(conn: psycopg.Connection, rule: Any, ctx: Context
                      ) -> dict[str, Observation]:
    r: IngestIncidentRule = rule
    rows = conn.execute(Q.INGEST_INCIDENTS, {
        "kinds": list(r.incidents), "t0": ctx.now - timedelta(seconds=r.window),
        "t1": ctx.now}).fetchall()
    out = {}
    for client_id, n, kinds, inc_id, at, kind, broker, w0, w1 in rows:
        # the latest incident of this client id; a taken-over session has no loss window
        # (the broker handed the session and its queue to the other client)
        detail = {} if not n else {
            "incident": kind, "incidents": list(kinds), "client_id": client_id,
            "broker": broker, "incident_id": inc_id, "at": at.isoformat(),
            "window_start": _iso(w0), "window_end": _iso(w1)}
        out[client_id] = Observation(client_id, None, None, float(n), detail)
    return out


def _carbon_budget(conn: psycopg.Connection, rule: Any, ctx: Context
                   ) -> dict[str, Observation]:
    r: CarbonBudgetRule = rule
    from parkcarbon.alerts import budget

    subjects = ([PARK] if r.subject == "park" else
                [e.id for e in ctx.registry.enterprises
                 if not r.enterprises or e.id in r.enterprises])
    values = budget.metric(conn, r.metric, subjects, ctx)
    return {s: Observation(s, None if s == PARK else s, None, v.get("value"), v)
            for s, v in ((s, values.get(s, {})) for s in subjects)}


_SOURCES = {
    "threshold": _threshold,
    "baseline": _baseline,
    "offline": _offline,
    "completeness": _completeness,
    "counter_anomaly": _counter,
    "dead_letters": _dead_letters,
    "carbon_budget": _carbon_budget,
    "ingest_incident": _ingest_incidents,
}
