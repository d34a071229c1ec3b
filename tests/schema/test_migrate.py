"""Migrations on the real PostgreSQL: idempotent, concurrency-safe, plain mode end to end."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from parkcarbon.errors import MigrationError
from parkcarbon.registry import load_registry
from parkcarbon.schema import discover, migrate, status
from parkcarbon.sync import sync_registry
from support import EXAMPLE_REGISTRY

CORE_RELATIONS = {
    "park", "enterprises", "meters", "meter_replacements", "readings", "dead_letters",
    "usage", "usage_hourly", "usage_daily", "schema_migrations", "parkcarbon_meta",
}


def _relations(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrate_twice_on_a_fresh_database(fresh_dsn: str) -> None:
    first = migrate(fresh_dsn, mode="plain", create_database=False)
    assert first.mode == "plain"
    assert first.applied == [f"{m.version:04d}_{m.name}" for m in discover()]
    assert _relations(fresh_dsn) >= CORE_RELATIONS
    second = migrate(fresh_dsn, mode="auto", create_database=False)
    assert second.applied == []
    assert second.version == first.version
    st = status(fresh_dsn)
    assert st.version == st.latest == first.version
    assert st.mode == "plain"
    assert st.pending == []


def test_two_concurrent_migrates_apply_each_migration_once(fresh_dsn: str) -> None:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate(fresh_dsn, mode="plain", create_database=False))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    applied = sorted(len(r.applied) for r in results)  # type: ignore[attr-defined]
    assert applied == [0, len(discover())]
    with psycopg.connect(fresh_dsn) as conn:
        (count,) = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()  # type: ignore[misc]
    assert count == len(discover())


def test_migrate_creates_the_database(db_factory) -> None:  # type: ignore[no-untyped-def]
    dsn = db_factory()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
    name = dsn.rsplit("dbname=", 1)[1].split()[0]
    target = dsn.replace(f"dbname={name}", f"dbname={name}_new")
    try:
        result = migrate(target, mode="plain")
        assert result.applied
    finally:
        admin = dsn.replace(f"dbname={name}", "dbname=postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_new" WITH (FORCE)')


def test_forcing_another_mode_on_an_existing_database_is_refused(fresh_dsn: str) -> None:
    migrate(fresh_dsn, mode="plain", create_database=False)
    with pytest.raises(MigrationError, match="set up in plain mode"):
        migrate(fresh_dsn, mode="timescale", create_database=False)


def test_forcing_timescale_without_the_extension_is_a_clear_error(fresh_dsn: str) -> None:
    """Not installed (a bare server), or installed but not preloaded (the main server
    once scripts/test has installed ../shared/timescaledb)."""
    with psycopg.connect(fresh_dsn) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        preloaded = conn.execute(
            "SELECT current_setting('timescaledb.max_background_workers', true)"
        ).fetchone()
    if available and preloaded and preloaded[0] is not None:
        pytest.skip("this server preloads TimescaleDB")
    expected = "shared_preload_libraries" if available else "timescaledb extension is not installed"
    with pytest.raises(MigrationError, match=expected):
        migrate(fresh_dsn, mode="timescale", create_database=False)


def test_timezone_change_is_refused(fresh_dsn: str) -> None:
    migrate(fresh_dsn, mode="plain", timezone="Asia/Shanghai", create_database=False)
    with pytest.raises(MigrationError, match="timezone Asia/Shanghai"):
        migrate(fresh_dsn, mode="plain", timezone="Asia/Urumqi", create_database=False)


def test_plain_mode_end_to_end(fresh_dsn: str) -> None:
    """Registry synced, readings idempotent, usage rolled up by UTC hour and local day."""
    migrate(fresh_dsn, mode="plain", timezone="Asia/Shanghai", create_database=False)
    registry = load_registry(EXAMPLE_REGISTRY)
    with psycopg.connect(fresh_dsn) as conn:
        sync_registry(conn, registry)
        sync_registry(conn, registry)  # idempotent
        (n_meters,) = conn.execute("SELECT count(*) FROM meters WHERE active").fetchone()  # type: ignore[misc]
        assert n_meters == len(registry.meters)
        t0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO readings (meter_id, ts, value) VALUES ('E01-ELEC-1', %s, 1)",
                        (t0,))
            cur.execute(
                "INSERT INTO readings (meter_id, ts, value) VALUES ('E01-ELEC-1', %s, 2) "
                "ON CONFLICT (meter_id, ts) DO NOTHING",
                (t0,),
            )
            assert cur.rowcount == 0
            # 15-minute usage slots of 1 kWh from 15:00 to 17:00 UTC on 2026-01-01:
            # 15:00-16:00 UTC is 23:00-24:00 on 1 Jan in Shanghai, 16:00-17:00 UTC is 2 Jan.
            start = datetime(2026, 1, 1, 15, 0, tzinfo=UTC)
            with cur.copy("COPY usage (meter_id, ts, quantity) FROM STDIN") as copy:
                for i in range(8):
                    copy.write_row(("E01-ELEC-1", start + timedelta(minutes=15 * i), 1.0))
        hourly = conn.execute(
            "SELECT bucket, quantity, slots FROM usage_hourly ORDER BY bucket"
        ).fetchall()
        assert [(b.hour, q, n) for b, q, n in hourly] == [(15, 4.0, 4), (16, 4.0, 4)]
        daily = conn.execute(
            "SELECT (bucket AT TIME ZONE 'Asia/Shanghai')::date, quantity FROM usage_daily "
            "ORDER BY 1"
        ).fetchall()
        assert [(str(d), q) for d, q in daily] == [("2026-01-01", 4.0), ("2026-01-02", 4.0)]


def test_removed_meters_are_deactivated_not_deleted(migrated_dsn: str) -> None:
    registry = load_registry(EXAMPLE_REGISTRY)
    smaller = registry.model_copy(update={"meters": registry.meters[1:]})
    with psycopg.connect(migrated_dsn) as conn:
        result = sync_registry(conn, smaller)
        assert result.deactivated_meters == 1
        row = conn.execute(
            "SELECT active FROM meters WHERE id = %s", (registry.meters[0].id,)
        ).fetchone()
    assert row == (False,)
