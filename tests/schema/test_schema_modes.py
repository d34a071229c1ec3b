"""The two storage modes offer the same relations and give the same rollups.

Plain mode runs everywhere. The timescale cases run when
``PARKCARBON_TEST_STORAGE_MODE=timescale`` and ``PARKCARBON_TEST_DSN`` points at a
server with TimescaleDB preloaded, as in the timescale pass of scripts/test
(docs/timescale.md); otherwise they are skipped.
Expected rollups are computed here in Python from the seeded slots, so each mode is
checked on its own and, when both run, against each other.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import conninfo, sql

from parkcarbon.errors import DatabaseError, MigrationError
from parkcarbon.schema import migrate, refresh_rollups, status
from parkcarbon.schema.migrate import TIMESCALE_FIXED_VERSION, _version_tuple
from support import ADMIN_DSN

TIMESCALE_ENABLED = os.environ.get("PARKCARBON_TEST_STORAGE_MODE") == "timescale"
MODES = [
    "plain",
    pytest.param(
        "timescale",
        marks=pytest.mark.skipif(
            not TIMESCALE_ENABLED, reason="set PARKCARBON_TEST_STORAGE_MODE=timescale"
        ),
    ),
]
timescale_only = pytest.mark.skipif(
    not TIMESCALE_ENABLED, reason="set PARKCARBON_TEST_STORAGE_MODE=timescale"
)
VIEWS = ("usage_hourly", "usage_daily")
Row = tuple[str, datetime, float, bool, int]


def _connect(dsn: str) -> psycopg.Connection:
    # autocommit: refresh_continuous_aggregate cannot run inside a transaction block
    return psycopg.connect(dsn, autocommit=True, options="-c timezone=UTC")


def _slots(start: datetime, count: int, meters: tuple[str, ...] = ("M1", "M2")) -> list:
    """15-minute usage slots; quantities are multiples of 1/4 so every sum is exact."""
    return [
        (m, start + timedelta(minutes=15 * i), (i * 7 + k * 3) % 41 / 4, (i + k) % 29 == 0)
        for k, m in enumerate(meters)
        for i in range(count)
    ]


def _write(conn: psycopg.Connection, rows: list) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage (meter_id, ts, quantity, estimated) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (meter_id, ts) DO UPDATE "
            "SET quantity = excluded.quantity, estimated = excluded.estimated",
            rows,
        )


def _expected(rows: list, tz: str) -> dict[str, list[Row]]:
    """usage_hourly (UTC hours) and usage_daily (local days) as the views define them."""
    zone = ZoneInfo(tz)
    out: dict[str, list[Row]] = {}
    for view, bucket_of in (
        ("usage_hourly", lambda ts: ts.replace(minute=0)),
        ("usage_daily", lambda ts: ts.astimezone(zone).replace(hour=0, minute=0)),
    ):
        acc: dict[tuple[str, datetime], list] = defaultdict(lambda: [0.0, False, 0])
        for meter, ts, quantity, estimated in rows:
            a = acc[(meter, bucket_of(ts).astimezone(UTC))]
            a[0] += quantity
            a[1] = a[1] or estimated
            a[2] += 1
        out[view] = sorted((m, b, q, e, n) for (m, b), (q, e, n) in acc.items())
    return out


def _views(conn: psycopg.Connection) -> dict[str, list[Row]]:
    return {
        view: conn.execute(
            sql.SQL(
                "SELECT meter_id, bucket, quantity, estimated, slots FROM {} ORDER BY 1, 2"
            ).format(sql.Identifier(view))
        ).fetchall()
        for view in VIEWS
    }


def _refresh(conn: psycopg.Connection, mode: str) -> None:
    """Materialise everything (timescale); plain views need nothing."""
    assert refresh_rollups(conn) is (mode == "timescale")


def _current(rows: list, changes: list, deleted: set) -> list:
    merged = {(m, ts): (m, ts, q, e) for m, ts, q, e in rows + changes}
    return [r for key, r in merged.items() if key not in deleted]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Asia/Kolkata"])
def test_views_equal_the_rollups_of_the_seeded_slots(fresh_dsn: str, mode: str, tz: str) -> None:
    """Real-time, materialised, and after late changes: always the same numbers."""
    migrate(fresh_dsn, mode=mode, timezone=tz, create_database=False)
    rows = _slots(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), 96 * 3)
    with _connect(fresh_dsn) as conn:
        _write(conn, rows)
        assert _views(conn) == _expected(rows, tz)  # nothing materialised yet
        _refresh(conn, mode)
        assert _views(conn) == _expected(rows, tz)
        # late data: corrections, deletions, a new meter, newer slots
        changes = [(m, ts, q + 2.5, not e) for m, ts, q, e in rows[40:60]]
        changes += _slots(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), 8, meters=("M3",))
        changes += _slots(datetime(2026, 3, 4, 10, 0, tzinfo=UTC), 20)
        deleted = {(m, ts) for m, ts, _, _ in rows[100:110]}
        _write(conn, changes)
        conn.execute(
            "DELETE FROM usage WHERE (meter_id, ts) IN (SELECT * FROM unnest(%s::text[], "
            "%s::timestamptz[]))",
            ([m for m, _ in deleted], [ts for _, ts in deleted]),
        )
        _refresh(conn, mode)
        assert _views(conn) == _expected(_current(rows, changes, deleted), tz)


@pytest.mark.parametrize("mode", MODES)
def test_materialised_buckets_wait_for_a_refresh(fresh_dsn: str, mode: str) -> None:
    """Timescale: a late change to a materialised bucket shows after refresh_rollups."""
    migrate(fresh_dsn, mode=mode, timezone="Asia/Shanghai", create_database=False)
    rows = _slots(datetime(2026, 3, 1, tzinfo=UTC), 8)
    with psycopg.connect(fresh_dsn) as conn:  # not autocommit, like derive_usage's
        _write(conn, rows)
        conn.commit()
        _refresh(conn, mode)
        conn.execute("UPDATE usage SET quantity = quantity + 1 WHERE meter_id = 'M1'")
        conn.commit()
        before = _views(conn)
        conn.commit()
        changed = [(m, ts, q + (m == "M1"), e) for m, ts, q, e in rows]
        assert (before == _expected(changed, "Asia/Shanghai")) is (mode == "plain")
        _refresh(conn, mode)
        assert not conn.autocommit
        assert _views(conn) == _expected(changed, "Asia/Shanghai")
        conn.execute("SELECT 1")  # inside a transaction now
        with pytest.raises(DatabaseError, match="outside a transaction"):
            refresh_rollups(conn)
        assert refresh_rollups(fresh_dsn) is (mode == "timescale")  # own connection


@pytest.mark.parametrize("mode", MODES)
def test_daily_buckets_are_local_midnights(fresh_dsn: str, mode: str) -> None:
    migrate(fresh_dsn, mode=mode, timezone="Asia/Shanghai", create_database=False)
    # 15:45 UTC is 23:45 on 1 March in Shanghai; 16:00 UTC is 00:00 on 2 March.
    rows = [
        ("M1", datetime(2026, 3, 1, 15, 45, tzinfo=UTC), 1.0, False),
        ("M1", datetime(2026, 3, 1, 16, 0, tzinfo=UTC), 2.0, False),
    ]
    with _connect(fresh_dsn) as conn:
        _write(conn, rows)
        _refresh(conn, mode)
        daily = conn.execute("SELECT bucket, quantity FROM usage_daily ORDER BY bucket").fetchall()
        hourly = conn.execute("SELECT bucket FROM usage_hourly ORDER BY bucket").fetchall()
    shanghai = ZoneInfo("Asia/Shanghai")
    assert daily == [
        (datetime(2026, 3, 1, tzinfo=shanghai), 1.0),
        (datetime(2026, 3, 2, tzinfo=shanghai), 2.0),
    ]
    assert hourly == [
        (datetime(2026, 3, 1, 15, tzinfo=UTC),),
        (datetime(2026, 3, 1, 16, tzinfo=UTC),),
    ]


@timescale_only
def test_plain_and_timescale_databases_return_identical_rows(
    db_factory: Callable[[], str],
) -> None:
    plain, timescale = db_factory(), db_factory()
    migrate(plain, mode="plain", create_database=False)
    migrate(timescale, mode="timescale", create_database=False)
    rows = _slots(datetime(2026, 1, 30, 12, 0, tzinfo=UTC), 96 * 4, ("A", "B", "C"))
    query = (  # a Grafana-style monthly total from the daily view
        "SELECT meter_id, date_trunc('month', bucket, 'Asia/Shanghai'), sum(quantity), "
        "sum(slots) FROM usage_daily GROUP BY 1, 2 ORDER BY 1, 2"
    )
    with _connect(plain) as p, _connect(timescale) as t:
        _write(p, rows)
        _write(t, rows)
        assert _views(p) == _views(t)
        assert p.execute(query).fetchall() == t.execute(query).fetchall()
        _refresh(t, "timescale")
        assert _views(p) == _views(t)


@pytest.fixture
def timescale_dsn(fresh_dsn: str) -> str:
    migrate(fresh_dsn, mode="timescale", timezone="Asia/Shanghai", create_database=False)
    return fresh_dsn


def _compress_all(conn: psycopg.Connection, table: str) -> int:
    rows = conn.execute("SELECT compress_chunk(c, true) FROM show_chunks(%s) c", (table,))
    return len(rows.fetchall())


def _timescale_version(conn: psycopg.Connection) -> tuple[int, ...]:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    return _version_tuple(row.fetchone()[0])  # type: ignore[index]


@timescale_only
def test_timescale_objects_policies_and_jobs(timescale_dsn: str) -> None:
    st = status(timescale_dsn)
    assert (st.mode, st.hypertables) == ("timescale", ["readings", "usage"])
    assert st.continuous_aggregates == ["usage_daily", "usage_day_quality", "usage_hourly"]
    with _connect(timescale_dsn) as conn:
        settings = conn.execute(
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index "
            "FROM timescaledb_information.compression_settings ORDER BY 1, 2"
        ).fetchall()
        assert settings == [
            ("readings", "meter_id", 1, None),
            ("readings", "ts", None, 1),
            ("usage", "meter_id", 1, None),
            ("usage", "ts", None, 1),
        ]
        jobs = conn.execute(
            "SELECT j.job_id, j.proc_name, coalesce(c.view_name, j.hypertable_name) "
            "FROM timescaledb_information.jobs j "
            "LEFT JOIN timescaledb_information.continuous_aggregates c "
            "ON c.materialization_hypertable_name = j.hypertable_name "
            "WHERE j.proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate') "
            "ORDER BY 3"
        ).fetchall()
        assert [(p, n) for _, p, n in jobs] == [
            ("policy_compression", "readings"),
            ("policy_compression", "usage"),
            ("policy_refresh_continuous_aggregate", "usage_daily"),
            ("policy_refresh_continuous_aggregate", "usage_day_quality"),
            ("policy_refresh_continuous_aggregate", "usage_hourly"),
        ]
        for job_id, _, _ in jobs:  # every policy runs on an empty database
            conn.execute("CALL run_job(%s)", (job_id,))


@timescale_only
def test_late_rows_land_in_compressed_chunks(timescale_dsn: str) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with _connect(timescale_dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s)",
            [("M1", t0 + timedelta(minutes=15 * i), float(i)) for i in range(96 * 10)],
        )
        _write(conn, _slots(t0, 96 * 10))
        assert _compress_all(conn, "readings") >= 1 and _compress_all(conn, "usage") >= 1
        insert = (
            "INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (meter_id, ts) DO NOTHING"
        )
        cur.execute(insert, ("M1", t0 + timedelta(minutes=7), -1.0))  # new, between slots
        assert cur.rowcount == 1
        cur.execute(insert, ("M1", t0 + timedelta(minutes=15), -1.0))  # redelivered
        assert cur.rowcount == 0
        # derivation rewrites and deletes usage slots in compressed chunks
        cur.execute("UPDATE usage SET quantity = 99 WHERE meter_id = 'M1' AND ts = %s", (t0,))
        cur.execute(
            "DELETE FROM usage WHERE meter_id = 'M2' AND ts < %s", (t0 + timedelta(hours=1),)
        )
        assert cur.rowcount == 4
        assert cur.execute(
            "SELECT count(*), sum(value) FROM readings WHERE value < 0 OR ts = %s",
            (t0 + timedelta(minutes=15),),
        ).fetchone() == (2, 0.0)
        assert cur.execute(
            "SELECT quantity FROM usage WHERE meter_id = 'M1' AND ts = %s", (t0,)
        ).fetchone() == (99.0,)


@timescale_only
def test_one_insert_with_duplicates_and_new_rows_into_a_compressed_chunk(
    timescale_dsn: str,
) -> None:
    """Ingest's batch pattern: INSERT ... SELECT ... ON CONFLICT DO NOTHING."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with _connect(timescale_dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s)",
            [("M1", t0 + timedelta(minutes=15 * i), float(i)) for i in range(96)],
        )
        _compress_all(conn, "readings")
        batch = [
            ("M1", t0 + timedelta(minutes=15), 1.0),
            ("M1", t0 + timedelta(minutes=20), -1.0),
            ("M1", t0 + timedelta(minutes=30), 2.0),
            ("M1", t0 + timedelta(minutes=35), -1.0),
        ]
        cur.execute(
            "INSERT INTO readings (meter_id, ts, value) "
            "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::float8[]) "
            "ON CONFLICT (meter_id, ts) DO NOTHING",
            tuple(list(col) for col in zip(*batch, strict=True)),
        )
        stored = cur.execute("SELECT count(*) FROM readings WHERE value < 0").fetchone()
        version = _timescale_version(conn)
    if stored != (2,) and version < TIMESCALE_FIXED_VERSION:
        pytest.xfail(f"TimescaleDB {version} drops rows here (timescale/timescaledb#7672)")
    assert stored == (2,)


@timescale_only
def test_migrate_warns_about_timescaledb_releases_that_lose_rows(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="parkcarbon.schema.migrate"):
        migrate(fresh_dsn, mode="timescale", create_database=False)
    with _connect(fresh_dsn) as conn:
        affected = _timescale_version(conn) < TIMESCALE_FIXED_VERSION
    assert ("timescaledb#7672" in caplog.text) == affected


def test_version_parsing() -> None:
    assert _version_tuple("2.17.2") < TIMESCALE_FIXED_VERSION <= _version_tuple("2.18.1")
    assert _version_tuple("2.19.3-dev") == (2, 19, 3)


def _has_timescaledb_files(dsn: str) -> bool:
    with _connect(dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        return row.fetchone() is not None


def _preloads_timescaledb(dsn: str) -> bool:
    with _connect(dsn) as conn:
        row = conn.execute("SELECT current_setting('timescaledb.max_background_workers', true)")
        value = row.fetchone()
        return value is not None and value[0] is not None


@pytest.fixture
def unprivileged_dsn() -> Iterator[str]:
    """A new database owned by a new role that may not create extensions in it."""
    name = f"pctest_{uuid.uuid4().hex[:12]}"
    with _connect(ADMIN_DSN) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
        # timescaledb is a trusted extension: database owners may create it, unless
        # they lack CREATE on the database.
        conn.execute(
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    try:
        yield conninfo.make_conninfo(ADMIN_DSN, dbname=name, user=name)
    finally:
        with _connect(ADMIN_DSN) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_auto_mode_falls_back_to_plain_when_timescaledb_is_not_usable(
    unprivileged_dsn: str,
) -> None:
    """Not installed (a bare server), installed but not preloaded (the main server once
    scripts/test has installed ../shared/timescaledb), or preloaded but not creatable by
    this role (the timescale pass)."""
    result = migrate(unprivileged_dsn, mode="auto", create_database=False)
    assert result.mode == "plain"
    if not _has_timescaledb_files(unprivileged_dsn):
        assert result.mode_reason == "timescaledb extension not installed on the server"
    elif _preloads_timescaledb(unprivileged_dsn):
        assert "timescaledb present but unusable" in result.mode_reason
    else:
        assert result.mode_reason == (
            "timescaledb installed but not preloaded (shared_preload_libraries)"
        )
    assert status(unprivileged_dsn).mode == "plain"
    with _connect(unprivileged_dsn) as conn:
        _write(conn, _slots(datetime(2026, 1, 1, tzinfo=UTC), 8))
        assert conn.execute("SELECT sum(slots) FROM usage_daily").fetchone() == (16,)


NOPRELOAD_DSN = os.environ.get("PARKCARBON_TEST_NOPRELOAD_DSN")


@pytest.mark.skipif(
    NOPRELOAD_DSN is None,
    reason="set PARKCARBON_TEST_NOPRELOAD_DSN to a server with TimescaleDB installed, "
    "not preloaded",
)
def test_auto_mode_falls_back_when_timescaledb_is_installed_but_not_preloaded() -> None:
    """There CREATE EXTENSION ends the session (FATAL), so it must not be tried."""
    assert NOPRELOAD_DSN is not None
    auto, forced = (
        conninfo.make_conninfo(NOPRELOAD_DSN, dbname=f"pctest_{uuid.uuid4().hex[:12]}")
        for _ in range(2)
    )
    try:
        assert _has_timescaledb_files(NOPRELOAD_DSN)
        result = migrate(auto, mode="auto")
        assert (result.mode, result.mode_reason) == (
            "plain",
            "timescaledb installed but not preloaded (shared_preload_libraries)",
        )
        with pytest.raises(MigrationError, match="shared_preload_libraries") as err:
            migrate(forced, mode="timescale")
        assert err.value.hint and "restart" in err.value.hint
    finally:
        with _connect(NOPRELOAD_DSN) as conn:
            for dsn in (auto, forced):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(conninfo.conninfo_to_dict(dsn)["dbname"])
                    )
                )
