"""Benchmark: one alert cycle of 5 rules x 1,200 meters (the 300-enterprise park).

300 enterprises x 4 meters (electricity, natural gas, water, steam), every meter at
15-minute usage for the last two local days and for the same hour of the four weeks
before (the baseline), four recent readings each, and a few counter events; generated
with generate_series in a dedicated database that is dropped at the end.

Rules: threshold (15-min demand), baseline spike (same weekday and hour, 4 weeks),
offline (4 intervals), completeness (yesterday, 90 %), counter anomaly (24 h). About 5 %
of the meters breach something, so instances are created, stepped and stored.

It times ``evaluate`` + ``dispatch`` (one transaction, as the minute job runs them)
for a first cycle (instances created) and a steady-state cycle a minute later, and
counts the SQL statements each sent (every ``execute``, and each ``executemany`` as
one batch, with its rows). Target: < 1 s, statements bounded (not one per meter).

    .venv/bin/python bench/alerts.py [--enterprises 300] [--keep]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import conninfo, sql

from parkcarbon.alerts.dispatch import dispatch
from parkcarbon.alerts.engine import evaluate
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.alerts.sources import Context
from parkcarbon.registry import Registry
from parkcarbon.schema import migrate
from parkcarbon.settings import Settings

ADMIN_DSN = os.environ.get("PARKCARBON_TEST_DSN", "postgresql://127.0.0.1:5432/postgres")
TZ = "Asia/Shanghai"
NOW = datetime(2026, 10, 12, 2, 7, tzinfo=UTC)  # Monday 10:07 in the park
CARRIERS = (("electricity", "kWh"), ("natural_gas", "m3"), ("water", "m3"), ("steam", "t"))


class Counting(psycopg.Cursor[Any]):
    statements = 0
    rows = 0

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        Counting.statements += 1
        return super().execute(query, params, **kw)

    def executemany(self, query: Any, params_seq: Any, **kw: Any) -> None:  # type: ignore[override]
        params = list(params_seq)
        Counting.statements += 1
        Counting.rows += len(params)
        super().executemany(query, params, **kw)


def registry(enterprises: int) -> Registry:
    ents = [{"id": f"B{i:04d}", "name_zh": f"企业{i}", "sector": "other",
             "land_area_mu": 100} for i in range(1, enterprises + 1)]
    meters = [{"id": f"{e['id']}-{c}", "enterprise": e["id"], "carrier": c, "unit": u}
              for e in ents for c, u in CARRIERS]
    return Registry.model_validate({
        "park": {"id": "bench", "name": "Benchmark park", "timezone": TZ},
        "enterprises": ents, "meters": meters})


def populate(dsn: str, reg: Registry) -> int:
    ids = [m.id for m in reg.meters]
    t1 = NOW.replace(minute=0)  # slot boundary before NOW
    day0 = (t1.astimezone().replace(hour=0) - timedelta(days=2))
    with psycopg.connect(dsn) as conn:
        # last two days, every slot; 1 meter in 40 with a gap yesterday, 1 in 25 hot now
        conn.execute("""
            INSERT INTO usage (meter_id, ts, quantity, estimated)
            SELECT m.id, g.ts,
                   CASE WHEN n %% 25 = 0 AND g.ts >= %(t1)s - interval '1 hour' THEN 900
                        ELSE 100 END,
                   n %% 40 = 0 AND g.ts >= %(t1)s - interval '20 hours'
                       AND g.ts < %(t1)s - interval '12 hours'
            FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS m(id, n),
                 generate_series(%(d0)s, %(t1)s - interval '15 minutes',
                                 interval '15 minutes') g(ts)""",
                     {"ids": ids, "t1": t1, "d0": day0})
        for w in range(1, 5):  # the baseline hours
            conn.execute("""
                INSERT INTO usage (meter_id, ts, quantity)
                SELECT m.id, g.ts, 100 FROM unnest(%(ids)s::text[]) AS m(id),
                     generate_series(%(h0)s, %(h0)s + interval '45 minutes',
                                     interval '15 minutes') g(ts)""",
                         {"ids": ids, "h0": t1 - timedelta(weeks=w, hours=1)})
        # readings: the last hour; 1 meter in 50 stopped 3 hours ago
        conn.execute("""
            INSERT INTO readings (meter_id, ts, value)
            SELECT m.id, g.ts, 1 FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS m(id, n),
                 generate_series(%(t1)s - interval '4 hours', %(t1)s,
                                 interval '15 minutes') g(ts)
            WHERE n %% 50 <> 0 OR g.ts < %(t1)s - interval '3 hours'""",
                     {"ids": ids, "t1": t1})
        conn.execute("""
            INSERT INTO meter_events (meter_id, kind, ts)
            SELECT m.id, 'reset', %(t)s FROM unnest(%(ids)s::text[]) WITH ORDINALITY
                AS m(id, n) WHERE n %% 100 = 0""", {"ids": ids, "t": NOW - timedelta(hours=5)})
        conn.execute("ANALYZE")
        return int(conn.execute("SELECT count(*) FROM usage").fetchone()[0])  # type: ignore[index]


CONFIG = {
    "defaults": {"for": "0s", "group_wait": "0s"},
    "channels": [{"id": "park-hook", "type": "webhook", "url": "http://127.0.0.1:9/x"}],
    "recipients": [{"id": "officer", "channels": ["park-hook"]}],
    "routes": [{"to": ["officer"]}],
    "rules": [
        {"id": "demand", "kind": "threshold", "carriers": ["electricity"], "window": "15m",
         "threshold": 2000},
        {"id": "spike", "kind": "baseline", "direction": "spike", "ratio": 3.0},
        {"id": "offline", "kind": "offline", "intervals": 4},
        {"id": "complete", "kind": "completeness", "min_share": 0.9},
        {"id": "counter", "kind": "counter_anomaly"},
    ],
}


def cycle(dsn: str, reg: Registry, config: Any, now: datetime) -> tuple[float, int, int, int]:
    Counting.statements = Counting.rows = 0
    ctx = Context(registry=reg, now=now, tz=Settings().tz)
    with psycopg.connect(dsn, cursor_factory=Counting, options="-c timezone=UTC") as conn:
        t0 = time.perf_counter()
        result = evaluate(conn, config, ctx)
        plan = dispatch(conn, config, now=now, tz=ctx.tz, registry=reg)
        conn.commit()
        seconds = time.perf_counter() - t0
    return seconds, Counting.statements, len(result.transitions), plan.messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    name = f"pcbench_alerts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        migrate(dsn, mode="plain", timezone=TZ, create_database=False)
        reg = registry(args.enterprises)
        t0 = time.perf_counter()
        rows = populate(dsn, reg)
        print(f"{len(reg.meters):,} meters, {rows:,} usage rows generated in "
              f"{time.perf_counter() - t0:.1f} s")
        config = parse_alerts(CONFIG, "bench", reg)
        for label, now in (("first cycle (instances created)", NOW),
                           ("steady cycle (a minute later)", NOW + timedelta(minutes=1))):
            seconds, statements, changes, messages = cycle(dsn, reg, config, now)
            print(f"{label:<34} {seconds:6.3f} s  {statements:3d} SQL statements  "
                  f"{changes:4d} state changes  {messages} messages  "
                  f"({len(config.rules)} rules x {len(reg.meters):,} meters)")
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                              .format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
