"""Benchmark: the monthly reports of the 300-enterprise benchmark park.

The park of ``bench/accounting.py`` (300 enterprises x 4 meters: grid electricity,
natural gas, water, purchased steam; 15-minute usage, generated with generate_series in
a dedicated database dropped at the end) for one month, accounted once, then timed:

* the park's month report, all three formats (PDF, XLSX, CSV): target < 10 s;
* all 300 enterprise reports, all three formats: target < 60 s;
* the park report again (unchanged figures: same version, byte-identical files);
* what ``report --all-enterprises`` does: the park's and all 300 reports in one call,
  the month read once for all of them (here unchanged versions, files rewritten).

Each time includes reading the month's figures from the database (``load_month``,
also timed alone first) and recording the version. Usage:

    .venv/bin/python bench/report.py [--enterprises 300] [--days 31] [--mode timescale]

``--mode timescale`` runs on the server of PARKCARBON_BENCH_TIMESCALE_DSN (TimescaleDB
preloaded) instead of PARKCARBON_TEST_DSN / 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounting import ADMIN_DSN, TZ, YEAR, load, populate

from parkcarbon.carbon.accounting import refresh
from parkcarbon.db import connect
from parkcarbon.periods import parse_period
from parkcarbon.reports.figures import load_month
from parkcarbon.reports.generate import generate_reports
from parkcarbon.schema import migrate
from parkcarbon.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enterprises", type=int, default=300)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--mode", choices=["plain", "timescale"], default="plain")
    args = parser.parse_args()
    admin_dsn = ADMIN_DSN
    if args.mode == "timescale":
        admin_dsn = os.environ.get("PARKCARBON_BENCH_TIMESCALE_DSN", "")
        if not admin_dsn:
            sys.exit("bench/report.py: --mode timescale needs PARKCARBON_BENCH_TIMESCALE_DSN")
    name = f"pcbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(admin_dsn, dbname=name)
    out = Path(tempfile.mkdtemp(prefix="pcbench-reports-"))
    try:
        migrate(dsn, mode=args.mode, timezone=TZ, create_database=False)
        print(f"storage mode {args.mode}")
        t0 = time.perf_counter()
        rows = populate(dsn, args.enterprises, args.days)
        print(f"usage rows: {rows:,} ({time.perf_counter() - t0:.1f} s to generate)")
        settings = load_settings(
            database_url=dsn, timezone=TZ, report_dir=out,
            targets_file=Path("/nonexistent/targets.yaml"),
            economics_file=Path("/nonexistent/economics.yaml"),
        )
        period = parse_period(f"{YEAR}-01")
        with connect(dsn) as conn:
            t0 = time.perf_counter()
            refresh(conn, settings)
            conn.commit()
            print(f"accounting refresh: {time.perf_counter() - t0:.1f} s")
            ids = [r[0] for r in conn.execute("SELECT id FROM enterprises ORDER BY id")]
            print(f"reports of {period.label} ({load()}):", flush=True)
            t0 = time.perf_counter()
            load_month(conn, settings, period)
            print(f"  read the month's figures (load_month):  {time.perf_counter() - t0:8.2f} s",
                  flush=True)
            t0 = time.perf_counter()
            [park] = generate_reports(conn, settings, period, [None])
            park_s = time.perf_counter() - t0
            sizes = ", ".join(f"{f.suffix[1:]} {f.stat().st_size / 1024:.0f} KB"
                              for f in park.files)
            print(f"  park report, pdf+xlsx+csv:            {park_s:8.2f} s  ({sizes})"
                  f"  target < 10 s", flush=True)
            t0 = time.perf_counter()
            written = generate_reports(conn, settings, period, ids)
            all_s = time.perf_counter() - t0
            print(f"  {len(written)} enterprise reports, pdf+xlsx+csv: {all_s:8.2f} s "
                  f"({all_s / max(1, len(written)):.3f} s each)  target < 60 s", flush=True)
            before = [hashlib.sha256(f.read_bytes()).hexdigest() for f in park.files]
            t0 = time.perf_counter()
            [again] = generate_reports(conn, settings, period, [None])
            again_s = time.perf_counter() - t0
            after = [hashlib.sha256(f.read_bytes()).hexdigest() for f in again.files]
            print(f"  park report again (unchanged):         {again_s:8.2f} s  version "
                  f"{again.version}, byte-identical: {before == after}", flush=True)
            t0 = time.perf_counter()
            every = generate_reports(conn, settings, period, [None, *ids])
            every_s = time.perf_counter() - t0
            print(f"  park + {len(every) - 1} enterprises in one call (--all-enterprises): "
                  f"{every_s:8.2f} s")
        print(f"  ({load()})")
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        for f in sorted(out.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        out.rmdir()


if __name__ == "__main__":
    os.environ.setdefault("PARKCARBON_LOG_LEVEL", "WARNING")
    main()
