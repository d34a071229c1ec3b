"""emissions_enterprise_day (migration 0013) is the GROUP BY of emissions_daily per
enterprise and local day, and emissions_park_day that of emissions_enterprise_day per
day, after every kind of accounting write: a first run, an
incremental run adding days, a restatement (late data changing a complete day), a
meter moved to another enterprise (recomputed with ``force``), and a TRUNCATE.

Usage rows are inserted directly, as in test_refresh and test_ownership.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import refresh
from parkcarbon.db import connect
from parkcarbon.settings import load_settings

TZ = ZoneInfo("Asia/Shanghai")
SLOT = timedelta(minutes=15)

# The rollup's columns as a GROUP BY of emissions_daily (the definition of 0013, spelled
# out again so a change to either shows here).
GROUP_BY = """
SELECT day, enterprise_id, count(*)::int AS meters,
       coalesce(sum(co2_location_t) FILTER (WHERE scope = '1'), 0),
       coalesce(sum(co2_market_t) FILTER (WHERE scope = '1'), 0),
       coalesce(sum(co2_location_t) FILTER (WHERE scope = '2'), 0),
       coalesce(sum(co2_market_t) FILTER (WHERE scope = '2' AND carrier = 'electricity'), 0),
       coalesce(sum(co2_market_t) FILTER (WHERE scope = '2' AND carrier <> 'electricity'), 0),
       coalesce(sum(co2_location_t) FILTER (WHERE scope = '3'), 0),
       coalesce(sum(tce_equivalent) FILTER (WHERE scope <> '3'), 0),
       coalesce(sum(tce_equal_value) FILTER (WHERE scope <> '3'), 0),
       coalesce(sum(quantity) FILTER (WHERE carrier = 'electricity' AND scope = '2'), 0),
       coalesce(sum(quantity) FILTER (WHERE carrier = 'electricity' AND scope = 'pv'), 0),
       coalesce(sum(quantity) FILTER (WHERE carrier = 'electricity' AND scope = 'export'), 0),
       sum(tce_equivalent) FILTER (WHERE carrier = 'electricity' AND scope IN ('2', 'pv')),
       sum(tce_equal_value) FILTER (WHERE carrier = 'electricity' AND scope IN ('2', 'pv')),
       bool_or(estimated)
FROM emissions_daily GROUP BY day, enterprise_id ORDER BY day, enterprise_id
"""
ROLLUP = """
SELECT day, enterprise_id, meters, scope1_location_co2_t, scope1_market_co2_t,
       scope2_location_co2_t, scope2_market_grid_co2_t, scope2_market_other_co2_t,
       scope3_water_co2_t, tce_equivalent, tce_equal_value, grid_kwh, pv_kwh, export_kwh,
       electricity_tce_equivalent, electricity_tce_equal_value, estimated
FROM emissions_enterprise_day ORDER BY day, enterprise_id
"""


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def put_usage(conn: psycopg.Connection, meter: str, start: datetime, end: datetime,
              quantity: float) -> None:
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) "
        "SELECT %s, g, %s FROM generate_series(%s::timestamptz, %s::timestamptz, %s) g",
        (meter, quantity, start, end - SLOT, SLOT),
    )
    conn.commit()


def assert_same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert [r[:3] for r in got] == [r[:3] for r in want]  # the same (day, enterprise) rows
    for g, w in zip(got, want, strict=True):
        # re-summed from emissions_daily, never adjusted: equal up to summation order
        assert [x is None for x in g] == [x is None for x in w], g[:2]
        assert [x for x in g[3:] if x is not None] == pytest.approx(
            [x for x in w[3:] if x is not None], rel=1e-12, abs=1e-12), g[:2]


# emissions_park_day: the same per day of the park (enterprises in place of the id).
PARK_GROUP_BY = f"""
SELECT day, count(*)::int, sum(meters)::int, {", ".join(
    f"sum(c{i})" for i in range(3, 16))}, bool_or(c16)
FROM ({GROUP_BY.replace("ORDER BY day, enterprise_id", "")}) x(day, enterprise_id, meters,
     {", ".join(f"c{i}" for i in range(3, 17))})
GROUP BY day ORDER BY day
"""
PARK = ROLLUP.replace("enterprise_id, meters", "enterprises, meters").replace(
    "emissions_enterprise_day ORDER BY day, enterprise_id", "emissions_park_day ORDER BY day")


def assert_rollup_exact(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    got = conn.execute(ROLLUP).fetchall()
    assert_same(got, conn.execute(GROUP_BY).fetchall())
    assert_same(conn.execute(PARK).fetchall(), conn.execute(PARK_GROUP_BY).fetchall())
    return got


def by_key(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {(str(r[0]), r[1]): r for r in rows}


def test_rollup_equals_group_by_after_refresh_restatement_move_and_truncate(
    migrated_dsn: str,
) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        meters = dict(conn.execute(
            "SELECT id, enterprise_id FROM meters WHERE enterprise_id IN ('E01', 'E02') "
            "AND carrier IN ('electricity', 'natural_gas') AND role = 'grid_import' "
            "ORDER BY id"
        ).fetchall())
        assert {"E01-ELEC-1", "E02-ELEC-1"} <= set(meters)
        for meter in meters:
            put_usage(conn, meter, local(2026, 3, 1), local(2026, 3, 5), 10.0)
        first = refresh(conn, settings)
        assert first.days_recomputed == 4 * len(meters)
        rows = by_key(assert_rollup_exact(conn))
        assert {k[1] for k in rows} == {"E01", "E02"} and len(rows) == 8
        e01 = rows[("2026-03-02", "E01")]
        n_e01 = sum(1 for e in meters.values() if e == "E01")
        assert e01[2] == n_e01 and e01[11] == pytest.approx(96 * 10.0)  # grid kWh

        # an incremental run adding days
        for meter in meters:
            put_usage(conn, meter, local(2026, 3, 5), local(2026, 3, 7), 10.0)
        refresh(conn, settings)
        assert len(assert_rollup_exact(conn)) == 12

        # late data: a slot of a complete day changes, the day is restated
        conn.execute(
            "UPDATE usage SET quantity = 25, derived_at = now() "
            "WHERE meter_id = 'E01-ELEC-1' AND ts = %s",
            (local(2026, 3, 2, 12),),
        )
        conn.commit()
        late = refresh(conn, settings)
        assert late.restated == 1
        rows = by_key(assert_rollup_exact(conn))
        assert rows[("2026-03-02", "E01")][11] == pytest.approx(96 * 10.0 + 15.0)
        assert rows[("2026-03-03", "E01")][11] == pytest.approx(96 * 10.0)

        # E02's electricity meter moves to E01 from 4 March (local midnight); a forced
        # recomputation gives the days from then to E01, the history stays with E02
        at = local(2026, 3, 4)
        with conn.transaction():
            conn.execute("UPDATE meters SET enterprise_id = 'E01' WHERE id = 'E02-ELEC-1'")
            conn.execute("UPDATE meter_ownership SET valid_to = %s WHERE meter_id = "
                         "'E02-ELEC-1' AND valid_to = now()", (at,))
            conn.execute("UPDATE meter_ownership SET valid_from = %s WHERE meter_id = "
                         "'E02-ELEC-1' AND valid_from = now()", (at,))
        refresh(conn, settings, force=True)
        owners = dict(conn.execute(
            "SELECT day::text, enterprise_id FROM emissions_daily "
            "WHERE meter_id = 'E02-ELEC-1'").fetchall())
        assert owners["2026-03-03"] == "E02" and owners["2026-03-04"] == "E01"
        rows = by_key(assert_rollup_exact(conn))
        assert rows[("2026-03-04", "E01")][2] == n_e01 + 1
        assert rows[("2026-03-04", "E01")][11] == pytest.approx(2 * 96 * 10.0)
        assert rows[("2026-03-03", "E01")][2] == n_e01
        assert rows[("2026-03-04", "E02")][11] == 0.0  # its gas meter only now

        conn.execute("TRUNCATE emissions_daily")
        assert conn.execute(
            "SELECT (SELECT count(*) FROM emissions_enterprise_day) "
            "+ (SELECT count(*) FROM emissions_park_day)").fetchone() == (0,)
        conn.rollback()


def test_migration_backfills_what_is_accounted(migrated_dsn: str) -> None:
    """A database accounted before 0013: the migration sums what emissions_daily holds."""
    from parkcarbon.schema import migrate

    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 3, 1), local(2026, 3, 3), 10.0)
        refresh(conn, settings)
        want = conn.execute(ROLLUP).fetchall()
        assert len(want) == 2
        # as if 0013 had never run: no rollup rows, no triggers, no version 13
        conn.execute("DROP TABLE emissions_enterprise_day, emissions_park_day CASCADE")
        conn.execute("DROP FUNCTION emissions_enterprise_day_resum(text) CASCADE")
        for fn in ("new", "old", "both", "truncate"):
            conn.execute(f"DROP FUNCTION emissions_enterprise_day_{fn}() CASCADE")
        conn.execute("DELETE FROM schema_migrations WHERE version = 13")
        conn.commit()
    result = migrate(migrated_dsn, timezone="Asia/Shanghai", create_database=False)
    assert result.applied == ["0013_emissions_enterprise_day"]
    with connect(migrated_dsn) as conn:
        got = conn.execute(ROLLUP).fetchall()
        assert_same(conn.execute(PARK).fetchall(), conn.execute(PARK_GROUP_BY).fetchall())
        assert conn.execute("SELECT count(*) FROM emissions_park_day").fetchone() == (2,)
    assert_same(got, want)
