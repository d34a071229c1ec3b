"""Benchmark: carbon accounting of a month and a year against a bare SQL sum.

300 enterprises x 4 meters (grid electricity, natural gas, water, purchased steam) at
15-minute usage for one year = 1,200 x 35,040 = 42,048,000 usage rows, generated with
generate_series in a dedicated database that is dropped at the end.

For a month and for the year it times, in the same run and on the same rows:

* bare:        SELECT sum(quantity) FROM usage WHERE ts in the period
* bare/meter:  the same grouped by meter_id (what any per-meter report needs)
* bare/meter-day: the same grouped by meter and local day (the least work any daily
               accounting does)
* accounting:  refresh(period=..., force=True) (usage per meter and local day x factor
               plan -> emissions_daily, change and restatement check) + emissions(period=...)

then recomputes the period again with everything stored (nothing changes, nothing is
written), and times an incremental refresh() with nothing new.

and prints the seconds and the ratio accounting / bare. Usage:

    .venv/bin/python bench/accounting.py [--enterprises 300] [--days 365] [--keep]

Check free disk first (about 8 GB for a year): df -h /work
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo, sql

from parkcarbon.carbon.accounting import emissions, refresh
from parkcarbon.db import connect
from parkcarbon.schema import migrate
from parkcarbon.settings import load_settings

ADMIN_DSN = os.environ.get("PARKCARBON_TEST_DSN", "postgresql://127.0.0.1:5432/postgres")
TZ = "Asia/Shanghai"
YEAR = 2025


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return seconds, result


def populate(dsn: str, enterprises: int, days: int) -> int:
    """Registry rows and usage rows; returns the number of usage rows."""
    with connect(dsn) as conn:
        conn.execute(
            "INSERT INTO park (id, name, timezone, land_area_mu) "
            "VALUES ('bench', 'Benchmark park', %s, 60000)",
            (TZ,),
        )
        conn.execute(
            """INSERT INTO enterprises (id, name_zh, sector, land_area_mu)
               SELECT format('B%%s', lpad(i::text, 4, '0')), format('企业%%s', i),
                      'other', 100 FROM generate_series(1, %s) i""",
            (enterprises,),
        )
        conn.execute(
            """INSERT INTO meters (id, enterprise_id, carrier, role, counter_type, unit,
                                   reported_unit, interval_seconds)
               SELECT e.id || '-' || c.carrier, e.id, c.carrier, 'grid_import',
                      'cumulative', c.unit, c.unit, 900
               FROM enterprises e,
                    (VALUES ('electricity', 'kWh'), ('natural_gas', 'm3'),
                            ('water', 'm3'), ('steam', 't')) c(carrier, unit)"""
        )
        # Load without secondary indexes, then build them (as a bulk import would).
        conn.execute("DROP INDEX usage_ts_idx")
        conn.execute("DROP INDEX usage_derived_at_idx")
        conn.execute("ALTER TABLE usage DROP CONSTRAINT usage_pkey")
        conn.commit()
        meters = [r[0] for r in conn.execute("SELECT id FROM meters ORDER BY id").fetchall()]
    # One INSERT per batch of meters keeps each statement (and its WAL) moderate.
    batch = 100
    start = f"{YEAR}-01-01 00:00:00+08"
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for i in range(0, len(meters), batch):
            conn.execute(
                """INSERT INTO usage (meter_id, ts, quantity, derived_at)
                   SELECT m, g, 10 + (hashtext(m) & 7) + extract(hour FROM g)::int %% 5,
                          %s::timestamptz
                   FROM unnest(%s::text[]) m,
                        generate_series(%s::timestamptz,
                                        %s::timestamptz + %s * interval '1 day'
                                          - interval '15 minutes',
                                        interval '15 minutes') g""",
                (start, meters[i : i + batch], start, start, days),
            )
        conn.execute("ALTER TABLE usage ADD PRIMARY KEY (meter_id, ts)")
        conn.execute("CREATE INDEX usage_ts_idx ON usage (ts)")
        conn.execute("CREATE INDEX usage_derived_at_idx ON usage (derived_at)")
        conn.execute("VACUUM ANALYZE usage")
        row = conn.execute("SELECT count(*) FROM usage").fetchone()
        return int(row[0]) if row else 0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def measure(dsn: str, period: str, t0: str, t1: str) -> None:
    settings = load_settings(database_url=dsn, timezone=TZ)
    print(f"period {period} ({load()}):", flush=True)
    with connect(dsn) as conn:
        found = conn.execute(
            "SELECT count(*) FROM usage WHERE ts >= %s AND ts < %s", (t0, t1)
        ).fetchone()
        rows = found[0] if found else 0
        print(f"  usage rows in period: {rows:,}")
        # Warm the cache once so the first timed query does not pay for cold reads.
        conn.execute("SELECT sum(quantity) FROM usage WHERE ts >= %s AND ts < %s", (t0, t1))
        bare, _ = timed(
            "bare SQL sum",
            lambda: conn.execute(
                "SELECT sum(quantity) FROM usage WHERE ts >= %s AND ts < %s", (t0, t1)
            ).fetchone(),
        )
        per_meter, _ = timed(
            "bare SQL sum per meter",
            lambda: conn.execute(
                "SELECT meter_id, sum(quantity) FROM usage WHERE ts >= %s AND ts < %s GROUP BY 1",
                (t0, t1),
            ).fetchall(),
        )
        conn.execute("SET work_mem = '256MB'")  # same as the accounting run
        per_day, _ = timed(
            "bare SQL sum per meter and local day",
            lambda: conn.execute(
                "SELECT count(*) FROM (SELECT meter_id, date_bin('1 day', ts, "
                "'2000-01-01 00:00+08'), sum(quantity) FROM usage WHERE ts >= %s AND ts < %s "
                "GROUP BY 1, 2) x",
                (t0, t1),
            ).fetchone(),
        )
        conn.execute("RESET work_mem")
        # First accounting of the period: nothing stored yet for it.
        conn.execute("TRUNCATE emissions_daily, restatements")
        conn.commit()
        acc, result = timed(
            "refresh(period, force=True)",
            lambda: refresh(conn, settings, period=period, force=True),
        )
        conn.commit()
        rep, df = timed("emissions(period) -> DataFrame", lambda: emissions(conn, period=period))
        conn.commit()
        _, again = timed(
            "refresh(period, force=True) again, unchanged",
            lambda: refresh(conn, settings, period=period, force=True),
        )
        conn.commit()
        print(f"  again: {again.days_checked:,} checked, {again.days_recomputed:,} written")
    total = acc + rep
    print(
        f"  meter-day rows written: {result.days_recomputed:,}; enterprises in report: "
        f"{len(df)}; park scope1+2: {df['scope12_co2_t'].sum():,.1f} tCO2"
    )
    print(f"  ratio accounting (refresh + emissions) / bare sum:        {total / bare:6.2f}x")
    print(f"  ratio accounting (refresh + emissions) / bare per meter:  {total / per_meter:6.2f}x")
    print(
        f"  ratio accounting (refresh + emissions) / bare per meter-day: {total / per_day:6.2f}x",
        flush=True,
    )
    print(f"  ({load()})", flush=True)


def run_measurements(dsn: str, days: int) -> None:
    measure(dsn, f"{YEAR}-01", f"{YEAR}-01-01 00:00+08", f"{YEAR}-02-01 00:00+08")
    if days >= 365:
        measure(dsn, f"{YEAR}", f"{YEAR}-01-01 00:00+08", f"{YEAR + 1}-01-01 00:00+08")
    settings = load_settings(database_url=dsn, timezone=TZ)
    with connect(dsn) as conn:
        print("incremental refresh:", flush=True)
        conn.execute("TRUNCATE emissions_daily, restatements")
        conn.execute("DELETE FROM accounting_runs")
        conn.commit()
        timed("refresh() first whole-history run", lambda: refresh(conn, settings))
        conn.commit()
        _, again = timed("refresh() again, nothing new", lambda: refresh(conn, settings))
        conn.commit()
        print(f"  again: {again.days_checked:,} checked, {again.days_recomputed:,} written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enterprises", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep", action="store_true", help="Do not drop the database.")
    parser.add_argument(
        "--reuse", metavar="DBNAME", help="Measure on a database kept by an earlier --keep run."
    )
    args = parser.parse_args()
    if args.reuse:
        dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=args.reuse)
        run_measurements(dsn, args.days)
        return
    free_gb = shutil.disk_usage("/work" if os.path.isdir("/work") else "/").free / 1e9
    print(
        f"free disk: {free_gb:.0f} GB; {args.enterprises} enterprises x 4 meters x "
        f"{args.days} days x 96 slots",
        flush=True,
    )
    name = f"pcbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        migrate(dsn, mode="plain", timezone=TZ, create_database=False)
        _, n = timed(
            "generate usage (generate_series)", lambda: populate(dsn, args.enterprises, args.days)
        )
        print(f"  usage rows: {n:,}", flush=True)
        run_measurements(dsn, args.days)
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
