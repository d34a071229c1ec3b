"""Derivation and simulator benchmark: a month of the example park (52 meters).

Usage::

    .venv/bin/python bench/derive.py [--days 30] [--publish]

Creates a scratch database on PARKCARBON_BENCH_DSN's server (default
postgresql://127.0.0.1:5432/postgres; created and dropped), stores the simulated
readings directly (COPY, as ingest would), then times:

* generate(): building the messages (with all faults);
* derive_usage(full): the whole month from scratch;
* derive_usage() again with nothing new (the periodic no-op);
* derive_usage() after a late burst of 8 readings landing mid-month in one meter;
* derive_usage() after one more interval of readings for every meter (the 15-min tick).

``--publish`` also times publish() to the broker at PARKCARBON_MQTT_HOST/PORT
(default 127.0.0.1:1883, anonymous).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parent.parent

from parkcarbon.db import connect  # noqa: E402
from parkcarbon.ingest.simulator.simulate import FAULTS, generate, publish  # noqa: E402
from parkcarbon.ingest.usage.derive import derive_usage  # noqa: E402
from parkcarbon.registry import load_registry  # noqa: E402
from parkcarbon.schema import migrate  # noqa: E402
from parkcarbon.sync import sync_registry  # noqa: E402

ADMIN = os.environ.get("PARKCARBON_BENCH_DSN", "postgresql://127.0.0.1:5432/postgres")


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - t
    sys.stdout.write(f"{label:<48} {seconds:8.3f} s\n")
    return out, seconds


def rows_of(registry, msgs):  # type: ignore[no-untyped-def]
    out = []
    for m in msgs:
        if m.kind == "garbage":
            continue
        body = json.loads(m.payload)
        factor = registry.meter(m.meter_id).unit_factor
        for r in body.get("readings", [body]):
            out.append((m.meter_id, datetime.fromisoformat(r["ts"]), r["value"] * factor,
                        m.sim_time))
    return out


def store(conn: psycopg.Connection, rows) -> None:  # type: ignore[no-untyped-def]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS b (meter_id text, ts timestamptz, "
                    "value float8, received_at timestamptz) ON COMMIT DROP")
        with cur.copy("COPY b FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        cur.execute("INSERT INTO readings (meter_id, ts, value, received_at) "
                    "SELECT * FROM b ON CONFLICT DO NOTHING")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args()
    registry = load_registry(ROOT / "config" / "park.yaml")
    start = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    end = start + timedelta(days=args.days)
    msgs, gen_s = timed(f"generate {args.days} days, all faults", lambda: list(
        generate(registry, start=start, end=end, faults=FAULTS, seed=0)))
    rows = rows_of(registry, msgs)
    late_meter = next(m for m in msgs if m.fault == "late")
    late_ts = {datetime.fromisoformat(r["ts"]) for r in json.loads(late_meter.payload)["readings"]}
    on_time = [r for r in rows if not (r[0] == late_meter.meter_id and r[1] in late_ts)]
    held = [r for r in rows if r[0] == late_meter.meter_id and r[1] in late_ts]
    sys.stdout.write(f"messages {len(msgs)}, readings {len(rows)}\n")
    name = f"pcbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN, dbname=name)
    try:
        migrate(dsn, mode="plain", create_database=False)
        with connect(dsn) as conn:
            sync_registry(conn, registry)
            timed("store readings (COPY)", store, conn, on_time)
            full, full_s = timed("derive_usage(full=True), whole month", derive_usage, conn,
                                 full=True)
            sys.stdout.write(f"  {full.readings_used} readings -> {full.slots_written} slots, "
                             f"events {full.events_by_kind}; "
                             f"{full.readings_used / full_s:,.0f} readings/s\n")
            timed("derive_usage() with nothing new", derive_usage, conn)
            late_rows = [(m, ts, v, end + timedelta(hours=1)) for m, ts, v, _r in held]
            store(conn, late_rows)
            late, _ = timed(f"derive_usage() after {len(held)} late readings", derive_usage,
                            conn)
            sys.stdout.write(f"  recomputed {late.readings_used} readings, "
                             f"{late.slots_written} slots changed: "
                             f"{[(c.meter_id, c.slots) for c in late.changed]}\n")
            tick = [(m.id, end + timedelta(minutes=15), 0.0, end + timedelta(hours=2))
                    for m in registry.meters]
            tick_rows = []
            for meter_id, ts, _v, rec in tick:
                last = conn.execute("SELECT value FROM readings WHERE meter_id = %s "
                                    "ORDER BY ts DESC LIMIT 1", (meter_id,)).fetchone()
                tick_rows.append((meter_id, ts, last[0] + 1.0, rec))
            store(conn, tick_rows)
            tick_result, _ = timed("derive_usage() after one new reading per meter",
                                   derive_usage, conn)
            sys.stdout.write(f"  recomputed {tick_result.readings_used} readings "
                             f"for {tick_result.meters} meters\n")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    if args.publish:
        host = os.environ.get("PARKCARBON_MQTT_HOST", "127.0.0.1")
        port = int(os.environ.get("PARKCARBON_MQTT_PORT", "1883"))
        stats, pub_s = timed(f"publish {len(msgs)} messages (QoS 1)", publish, msgs,
                             host=host, port=port, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}")
        sys.stdout.write(f"  {stats.messages / pub_s:,.0f} messages/s\n")
    sys.stdout.write(f"generate: {len(msgs) / gen_s:,.0f} messages/s\n")


if __name__ == "__main__":
    main()
