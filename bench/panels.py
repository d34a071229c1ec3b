"""Benchmark: every Grafana panel's SQL on the benchmark park, both storage modes.

The park of ``bench/accounting.py`` (300 enterprises x 4 meters, grid electricity,
natural gas, water and purchased steam, 15-minute usage for a year of 2025 generated with
generate_series), accounted (``refresh``, then ``sync_budgets`` writes ``carbon_budgets`` from a
targets file made here: a park cap and 30 enterprise caps), with economics for every
enterprise and green power for one in ten. In timescale mode the continuous aggregates
are materialised first (as their policies keep them in production).

Every panel of every board is expanded as Grafana would (``parkcarbon.grafana.check``)
and run ``--repeat`` times for the last 30 days of the data and for the whole year; the
table gives rows, median and p95 milliseconds per panel (nearest rank), and the panels
over the 200 ms target. Usage:

    .venv/bin/python bench/panels.py [--enterprises 300] [--days 365] [--repeat 5]
        [--modes plain,timescale] [--keep [--seed-only]] [--reuse MODE=DBNAME [--drop]]

The databases are dropped at the end, also when seeding or a run fails. ``--keep``
keeps them (``--seed-only``: seed, print their names, run nothing); ``--reuse
plain=pcbench_panels_x`` measures on a kept one after migrating it to the current
schema (kept again unless ``--drop``), so a year is seeded once.

Plain mode uses PARKCARBON_TEST_DSN (default postgresql://127.0.0.1:5432/postgres),
timescale mode PARKCARBON_BENCH_TIMESCALE_DSN (a server with timescaledb preloaded).
A year is ~8 GB per mode: check free disk first (df -h /work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import conninfo, sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accounting import YEAR, load, populate

from parkcarbon.carbon.accounting import refresh
from parkcarbon.carbon.targets import sync_budgets
from parkcarbon.db import connect
from parkcarbon.grafana.build import build_boards
from parkcarbon.grafana.check import panel_queries, run_query
from parkcarbon.grafana.macros import TimeRange, Variable
from parkcarbon.schema import migrate
from parkcarbon.schema.rollups import refresh_rollups
from parkcarbon.settings import load_settings

TZ = "Asia/Shanghai"
TARGET_MS = 200.0
DSNS = {
    "plain": os.environ.get("PARKCARBON_TEST_DSN", "postgresql://127.0.0.1:5432/postgres"),
    "timescale": os.environ.get("PARKCARBON_BENCH_TIMESCALE_DSN", ""),
}


def _targets_file(enterprises: int) -> Path:
    ids = [f"B{i:04d}" for i in range(1, min(enterprises, 30) + 1)]
    lines = [
        "basis: location",
        "budget_profile: days",
        "park:",
        f"  annual: {{{YEAR}: {{cap_co2_t: 2500000}}}}",
        "enterprises:",
        *[f"  - {{id: {i}, annual: {{{YEAR}: {{cap_co2_t: 9000}}}}}}" for i in ids],
    ]
    path = Path(tempfile.mkdtemp(prefix="pc-bench-")) / "targets.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prepare(admin_dsn: str, mode: str, enterprises: int, days: int) -> str:
    name = f"pcbench_panels_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(admin_dsn, dbname=name)
    try:
        _seed(dsn, mode, enterprises, days)
    except BaseException:
        _drop(admin_dsn, dsn)  # also on Ctrl-C: a year is ~8 GB
        raise
    return dsn


def _seed(dsn: str, mode: str, enterprises: int, days: int) -> None:
    migrate(dsn, mode=mode, timezone=TZ, create_database=False)
    t0 = time.perf_counter()
    rows = populate(dsn, enterprises, days)
    print(f"  {mode}: {rows:,} usage rows generated in {time.perf_counter() - t0:.0f} s",
          flush=True)
    with connect(dsn) as conn:
        conn.execute(
            """INSERT INTO enterprise_economics (enterprise_id, month, value_added_10k_cny,
                   tax_10k_cny, investment_10k_cny)
               SELECT e.id, m::date, 500, 50, 80 FROM enterprises e,
                      generate_series(%s::date, %s::date, interval '1 month') m""",
            (f"{YEAR}-01-01", f"{YEAR}-12-01"),
        )
        conn.execute(
            """INSERT INTO green_power (enterprise_id, month, contract_kwh, certificate_kwh)
               SELECT e.id, m::date, 20000, 5000 FROM enterprises e,
                      generate_series(%s::date, %s::date, interval '1 month') m
               WHERE right(e.id, 1) = '0'""",
            (f"{YEAR}-01-01", f"{YEAR}-12-01"),
        )
        conn.commit()
        settings = load_settings(
            database_url=dsn, timezone=TZ, targets_file=_targets_file(enterprises),
            economics_file=Path("/nonexistent"), production_file=Path("/nonexistent"),
        )
        t0 = time.perf_counter()
        # not bring_up_to_date: there are no readings here, and deriving would remove the
        # generated usage; the figures, then the budgets, as it does them
        refresh(conn, settings)
        sync_budgets(conn, settings)
        conn.commit()
        (budgets,) = conn.execute("SELECT count(*) FROM carbon_budgets").fetchone() or (0,)
        print(f"  {mode}: {budgets} carbon_budgets rows; accounted in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    # usage was generated straight into the table: the continuous aggregates
    # (timescale) and usage_quality_enterprise_day (both modes) as derive leaves them
    t0 = time.perf_counter()
    refresh_rollups(dsn)
    print(f"  {mode}: rollups refreshed in {time.perf_counter() - t0:.0f} s", flush=True)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]  # nearest rank


def measure(dsn: str, mode: str, days: int, repeat: int) -> list[tuple[str, ...]]:
    tz = ZoneInfo(TZ)
    start = datetime(YEAR, 1, 1, tzinfo=tz)
    end = start + timedelta(days=days)
    ranges = {"last 30 days": TimeRange(end - timedelta(days=30), end),
              f"whole {'year' if days >= 365 else f'{days} days'}": TimeRange(start, end)}
    boards = build_boards()
    out = []
    with connect(dsn) as conn:
        first = conn.execute("SELECT min(id) FROM enterprises").fetchone()
        variables = {"enterprise": Variable(first[0] if first else "")}
        for label, tr in ranges.items():
            for board in boards.values():
                for q in panel_queries(board):
                    times, rows, error = [], 0, None
                    for _ in range(repeat + 1):  # the first run warms the cache
                        r = run_query(conn, q, tr, timescaledb=mode == "timescale",
                                      variables=variables)
                        if r.error:
                            error = r.error
                            break
                        times.append(r.ms)
                        rows = len(r.rows)
                    timed = times[1:] or times
                    out.append((
                        mode, label, q.board_uid.removeprefix("parkcarbon-"), q.title,
                        str(rows), f"{statistics.median(timed):.1f}" if timed else "-",
                        f"{p95(timed):.1f}" if timed else "-", error or "",
                    ))
    return out


def _drop(admin: str, dsn: str) -> None:
    name = conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(str(name))))


def reuse(admin: str, mode: str, name: str) -> str:
    """A database seeded by an earlier ``--keep`` run, migrated to the current schema,
    its rollups refreshed (whatever the schema was when it was seeded)."""
    dsn = conninfo.make_conninfo(admin, dbname=name)
    migrate(dsn, mode=mode, timezone=TZ, create_database=False)
    t0 = time.perf_counter()
    refresh_rollups(dsn)
    print(f"  {mode}: rollups refreshed in {time.perf_counter() - t0:.0f} s", flush=True)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return dsn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enterprises", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--modes", default="plain,timescale")
    parser.add_argument("--keep", action="store_true", help="Do not drop the databases.")
    parser.add_argument(
        "--reuse", metavar="MODE=DBNAME", action="append", default=[],
        help="Measure on a database kept by an earlier --keep run (migrated first; kept "
             "unless --drop); once per mode.",
    )
    parser.add_argument("--drop", action="store_true", help="Drop --reuse databases after.")
    parser.add_argument("--seed-only", action="store_true", help="Seed (with --keep), no runs.")
    args = parser.parse_args()
    bad = [item for item in args.reuse
           if item.partition("=")[0] not in DSNS or not item.partition("=")[2]]
    if bad:
        parser.error(f"--reuse {bad[0]!r}: expected MODE=DBNAME, MODE plain or timescale")
    reused = dict(item.split("=", 1) for item in args.reuse)
    print(f"{args.enterprises} enterprises x 4 meters x {args.days} days of 15-minute usage "
          f"({load()})", flush=True)
    results: list[tuple[str, ...]] = []
    for mode in args.modes.split(","):
        admin = DSNS[mode]
        if not admin:
            print(f"  {mode}: skipped (set PARKCARBON_BENCH_TIMESCALE_DSN)")
            continue
        keep = args.keep or (mode in reused and not args.drop)
        dsn = ""
        try:
            if mode in reused:
                dsn = conninfo.make_conninfo(admin, dbname=reused[mode])
                reuse(admin, mode, reused[mode])
            else:
                dsn = prepare(admin, mode, args.enterprises, args.days)
            if not args.seed_only:
                results += measure(dsn, mode, args.days, args.repeat)
        finally:
            if keep and dsn:
                print(f"  kept {dsn}", flush=True)
            elif dsn:
                _drop(admin, dsn)
    head = ("mode", "range", "board", "panel", "rows", "median ms", "p95 ms", "error")
    widths = [max(len(h), *(len(r[i]) for r in results)) if results else len(h)
              for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in results:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    slow = [r for r in results if r[6] != "-" and float(r[6]) >= TARGET_MS]
    print(f"{len(slow)} of {len(results)} panel runs at or over the {TARGET_MS:.0f} ms p95 "
          f"target ({load()})")


if __name__ == "__main__":
    main()
