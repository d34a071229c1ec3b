"""Incremental accounting runs: nothing rewritten or restated unless a figure changes.

Regression tests for refresh rewriting every stored meter-day on each call (a fixed
10-minute re-read window) and logging restatements for unchanged figures (a new factor
version with the same value, a re-derived slot with the same quantity, a day that was
still filling in). Usage rows are inserted directly, or derived from readings with
``derive_usage`` as the demo and the scheduler do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import emissions, park_summary, refresh
from parkcarbon.db import connect
from parkcarbon.settings import load_settings

TZ = ZoneInfo("Asia/Shanghai")
SLOT = timedelta(minutes=15)
XJ_2023 = 0.6021e-3  # tCO2/kWh


def put_usage(
    conn: psycopg.Connection, meter: str, start: datetime, slots: int, kwh: float
) -> None:
    """``slots`` 15-minute slots of ``kwh`` each from ``start``."""
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) "
        "SELECT %s, %s::timestamptz + g * %s::interval, %s FROM generate_series(0, %s - 1) g",
        (meter, start, SLOT, kwh, slots),
    )
    conn.commit()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def test_second_refresh_with_nothing_new_writes_and_restates_nothing(migrated_dsn: str) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1), 3 * 96, 10.0)  # 3 whole days
        put_usage(conn, "E02-GAS-1", local(2026, 1, 1), 3 * 96, 1.0)
        first = refresh(conn, settings)
        assert first.days_recomputed == 6 and first.restated == 0
        computed = dict(conn.execute("SELECT meter_id || day, run_id FROM emissions_daily"))
        for _ in range(2):  # within seconds of the derivation: nothing is re-read
            again = refresh(conn, settings)
            assert (again.days_checked, again.days_recomputed, again.restated) == (0, 0, 0)
        assert dict(conn.execute("SELECT meter_id || day, run_id FROM emissions_daily")) == (
            computed
        )
        assert conn.execute("SELECT count(*) FROM restatements").fetchone() == (0,)


def test_rederived_slots_with_the_same_quantity_are_checked_not_rewritten(
    migrated_dsn: str,
) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E03-ELEC-1", local(2026, 1, 1), 2 * 96, 10.0)
        refresh(conn, settings)
        # a derivation that rewrites slots with the values they had (derived_at moves)
        conn.execute("UPDATE usage SET derived_at = clock_timestamp()")
        conn.execute(
            "INSERT INTO usage_changes (meter_id, first_slot, last_slot, slots) "
            "VALUES ('E03-ELEC-1', %s, %s, 192)",
            (local(2026, 1, 1), local(2026, 1, 2, 23, 45)),
        )
        conn.commit()
        result = refresh(conn, settings)
        assert result.days_checked == 2  # both days recomputed and compared ...
        assert result.days_recomputed == 0 and result.restated == 0  # ... nothing differs


def test_a_day_filling_in_is_not_a_restatement_a_change_after_it_is(migrated_dsn: str) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E04-ELEC-1", local(2026, 2, 1), 40, 10.0)  # 00:00-10:00 so far
        refresh(conn, settings)
        put_usage(conn, "E04-ELEC-1", local(2026, 2, 1, 10), 56, 10.0)  # rest of the day
        filled = refresh(conn, settings)
        assert (filled.days_recomputed, filled.days_filled, filled.restated) == (1, 1, 0)
        day = emissions(conn, period="2026-02-01")
        assert day["grid_electricity_kwh"].sum() == pytest.approx(96 * 10.0)
        # the day is complete now: a changed slot is late data, restated
        conn.execute(
            "UPDATE usage SET quantity = 15, derived_at = now() WHERE meter_id = 'E04-ELEC-1' "
            "AND ts = %s",
            (local(2026, 2, 1, 12),),
        )
        conn.commit()
        late = refresh(conn, settings)
        assert (late.days_recomputed, late.days_filled, late.restated) == (1, 0, 1)
        old, new = conn.execute(
            "SELECT old_co2_location_t, new_co2_location_t FROM restatements WHERE run_id = %s",
            (late.run_id,),
        ).fetchone()
        # 960 kWh -> 965 kWh at 0.6021 kg/kWh: 0.578016 t -> 0.5810265 t
        assert (old, new) == (pytest.approx(960 * XJ_2023), pytest.approx(965 * XJ_2023))


def test_a_new_factor_version_with_the_same_value_updates_provenance_only(
    migrated_dsn: str, tmp_path: Path
) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 3, 1), 2 * 96, 10.0)
        refresh(conn, settings)
        same = tmp_path / "factors.yaml"  # the library's 2023 value, re-issued for 2026
        same.write_text(
            "factors:\n"
            "  - {key: co2.electricity.location, region: xinjiang, year: 2026, value: 0.6021,\n"
            "     unit: kg/kWh, annual: true, confidence: park decision, source: minute}\n",
            encoding="utf-8",
        )
        result = refresh(conn, load_settings(database_url=migrated_dsn, factors_file=same))
        assert result.days_recomputed == 2  # provenance: the rows name the new version
        assert result.restated == 0  # 1,920 kWh x 0.6021 kg/kWh before and after
        row = emissions(conn, period="2026-03").iloc[0]
        assert "/xinjiang/2026/park/" in row["factor_ids"]
        assert "earlier_year" not in row["flags"]


def test_usage_committed_after_a_run_by_an_older_transaction_is_not_missed(
    migrated_dsn: str,
) -> None:
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn, psycopg.connect(migrated_dsn) as writer:
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1), 96, 10.0)
        # a derivation in progress: its rows carry derived_at = its start, before the run
        writer.execute(
            "INSERT INTO usage (meter_id, ts, quantity) SELECT 'E05-ELEC-1', "
            "%s::timestamptz + g * interval '15 minutes', 1 FROM generate_series(0, 95) g",
            (local(2026, 1, 1),),
        )
        first = refresh(conn, settings)
        assert first.days_recomputed == 1  # E05 not committed yet
        writer.commit()
        second = refresh(conn, settings)
        assert second.days_recomputed == 1 and second.restated == 0
        assert set(emissions(conn, period="2026-01-01")["enterprise_id"]) == {"E01", "E05"}
        third = refresh(conn, settings)
        assert third.days_checked == 0


def test_scheduler_path_derive_then_refresh_restates_nothing_on_unchanged_readings(
    migrated_dsn: str,
) -> None:
    from parkcarbon.ingest.usage.derive import derive_usage

    settings = load_settings(database_url=migrated_dsn)
    t0 = datetime(2026, 1, 31, 16, tzinfo=UTC)  # local midnight 1 February

    def readings(first: int, last: int) -> list[tuple[str, datetime, float]]:
        # E01-ELEC-1: cumulative, multiplier 400: +1 per 15 min = 400 kWh per slot
        return [("E01-ELEC-1", t0 + i * SLOT, 1000.0 + i) for i in range(first, last)]

    with connect(migrated_dsn) as conn:

        def feed(rows: list[tuple[str, datetime, float]]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s)", rows
                )
            conn.commit()

        feed(readings(0, 2 * 96 + 1))  # two whole local days and the closing reading
        derive_usage(conn)
        first = refresh(conn, settings)
        assert first.days_recomputed == 2
        for _ in range(3):  # derive every minute, refresh every five: nothing new
            derive_usage(conn, full=True)
            derive_usage(conn)
            again = refresh(conn, settings)
            assert (again.days_recomputed, again.restated) == (0, 0)
        feed(readings(2 * 96 + 1, 2 * 96 + 41))  # the third day starts
        derive_usage(conn)
        grows = refresh(conn, settings)
        assert (grows.days_recomputed, grows.restated) == (1, 0)
        feed(readings(2 * 96 + 41, 3 * 96 + 1))  # and fills in
        derive_usage(conn)
        filled = refresh(conn, settings)
        assert (filled.days_recomputed, filled.days_filled, filled.restated) == (1, 1, 0)
        total = emissions(conn, period="2026-02")["grid_electricity_kwh"].sum()
        assert total == pytest.approx(3 * 96 * 400.0)  # 3 days x 96 slots x 400 kWh
        assert conn.execute("SELECT count(*) FROM restatements").fetchone() == (0,)


def test_park_summary_of_a_period_without_data_is_empty_and_typed(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        summary = park_summary(conn, "2026-01")
        assert summary.scopes == {
            "scope1_co2_t": 0.0,
            "scope1_process_co2_t": 0.0,
            "scope2_co2_t": 0.0,
            "scope12_co2_t": 0.0,
            "scope3_water_co2_t": 0.0,
        }
        assert summary.tce == 0.0
        assert summary.top_emitters.empty
        assert list(summary.top_emitters.columns) == [
            "enterprise_id",
            "name_zh",
            "scope12_co2_t",
            "share_pct",
        ]
        assert summary.top_emitters["scope12_co2_t"].dtype == "float64"
        assert summary.energy.empty and summary.energy["quantity"].dtype == "float64"
        df = emissions(conn, period="2026-01")
        assert df.empty and df["scope12_co2_t"].dtype == "float64"
        assert df["unconfirmed"].dtype == "bool"


def test_green_power_changes_are_logged_as_market_based_restatements(migrated_dsn: str) -> None:
    from parkcarbon.carbon.economics import parse_economics, sync_economics_counts
    from parkcarbon.carbon.restatement import green_power_restatements

    def green(amount: str) -> object:
        return parse_economics(
            {"records": [{"enterprise": "E05", "months": "2026-03", "green_power": amount}]}
        )

    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E05-ELEC-1", local(2026, 3, 1), 31 * 96, 1000 / 3)  # 992,000 kWh
        refresh(conn, settings)
        assert sync_economics_counts(conn, green("20 万kWh")) == (1, 1)  # 0 -> 200,000 kWh
        assert sync_economics_counts(conn, green("200000 kWh")) == (1, 0)  # same amount
        assert sync_economics_counts(conn, green("50 万kWh")) == (1, 1)  # 200,000 -> 500,000
        assert sync_economics_counts(conn, green("2 GWh")) == (1, 1)  # above consumption
        assert sync_economics_counts(conn, green("3 GWh")) == (1, 0)  # still 0 t: no change
        log = green_power_restatements(conn, enterprise="E05")
        assert [round(x) for x in log["new_green_kwh"]] == [200_000, 500_000, 2_000_000]
        grid = 992_000  # 31 days x 96 slots x 333.33 kWh
        remainder = grid * 0.6096e-3  # national remainder factor 2023 (latest earlier year)
        first, second, third = log.itertuples()
        assert first.old_co2_market_t == pytest.approx(remainder)  # 604.72 t
        # (992,000 - 200,000) kWh x 0.6096 kg/kWh = 482.80 t
        assert first.new_co2_market_t == pytest.approx((grid - 200_000) * 0.6096e-3)
        assert second.diff_co2_market_t == pytest.approx(-300_000 * 0.6096e-3)  # -182.88 t
        assert third.new_co2_market_t == pytest.approx(0.0)
        market = emissions(conn, period="2026-03", basis="market")
        assert market["scope2_co2_t"].sum() == pytest.approx(third.new_co2_market_t)
        assert green_power_restatements(conn, period="2026-04").empty


def _usage_by_day(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT meter_id, date_trunc('day', ts, 'Asia/Shanghai'), sum(quantity), "
        "bool_or(estimated), count(*) FROM usage GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def test_plain_day_totals_follow_every_kind_of_usage_write(migrated_dsn: str) -> None:
    """usage_day_totals (plain mode) stays equal to grouping usage after inserts,
    upserts, updates that move slots across days, deletes and truncate."""
    with connect(migrated_dsn) as conn:
        if conn.execute("SELECT to_regclass('usage_day_totals')").fetchone() == (None,):
            pytest.skip("TimescaleDB mode: usage_daily is a continuous aggregate")
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1, 20), 40, 2.5)  # across midnight
        put_usage(conn, "E02-GAS-1", local(2026, 1, 1), 96, 1.0)
        conn.execute(
            "INSERT INTO usage (meter_id, ts, quantity, estimated) VALUES (%s, %s, 7, true) "
            "ON CONFLICT (meter_id, ts) DO UPDATE SET quantity = excluded.quantity, "
            "estimated = excluded.estimated",
            ("E01-ELEC-1", local(2026, 1, 1, 20)),
        )
        conn.execute(  # one slot moves to another day
            "UPDATE usage SET ts = ts + interval '3 days' WHERE meter_id = 'E02-GAS-1' "
            "AND ts = %s",
            (local(2026, 1, 1, 5),),
        )
        conn.execute(  # the whole first local day of E01 goes: its row must go too
            "DELETE FROM usage WHERE meter_id = 'E01-ELEC-1' AND ts < %s",
            (local(2026, 1, 2),),
        )
        view = conn.execute("SELECT * FROM usage_daily ORDER BY 1, 2").fetchall()
        assert view == _usage_by_day(conn)
        assert [(r[0], r[1].astimezone(TZ).day, r[4]) for r in view] == [
            ("E01-ELEC-1", 2, 24), ("E02-GAS-1", 1, 95), ("E02-GAS-1", 4, 1)]
        conn.execute("DELETE FROM usage WHERE meter_id = 'E02-GAS-1'")
        conn.execute(
            "INSERT INTO usage (meter_id, ts, quantity, estimated) VALUES (%s, %s, 1, true)",
            ("E03-ELEC-1", local(2026, 1, 5)),
        )
        assert conn.execute("SELECT * FROM usage_daily ORDER BY 1, 2").fetchall() == (
            _usage_by_day(conn)
        )
        conn.execute("TRUNCATE usage")
        assert conn.execute("SELECT count(*) FROM usage_day_totals").fetchone() == (0,)


def test_accounting_from_day_totals_equals_accounting_from_usage_rows(
    migrated_dsn: str,
) -> None:
    """The plain-mode run reads usage_day_totals; in TimescaleDB mode (the mode recorded
    in parkcarbon_meta, see ``parkcarbon.db.storage_mode``) it groups the usage rows.
    Both give the same stored figures."""
    settings = load_settings(database_url=migrated_dsn)
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 30, 13), 500, 10.0)  # across a month
        put_usage(conn, "E02-GAS-1", local(2026, 1, 31), 96 + 7, 1.25)
        conn.execute(
            "UPDATE usage SET estimated = true WHERE meter_id = 'E02-GAS-1' AND ts = %s",
            (local(2026, 1, 31, 3),),
        )
        conn.commit()
        refresh(conn, settings, period="2026", force=True)
        conn.commit()
        columns = ("meter_id, day, quantity, co2_location_t, tce_equivalent, estimated, "
                   "slots, plan_id")
        from_totals = conn.execute(
            f"SELECT {columns} FROM emissions_daily ORDER BY 1, 2").fetchall()
        assert len(from_totals) == 6 + 2
        conn.execute("TRUNCATE emissions_daily")
        conn.execute("DROP TABLE IF EXISTS usage_day_totals CASCADE")  # the view goes too
        # the run asks storage_mode(), not whether the table is there
        conn.execute("UPDATE parkcarbon_meta SET value = 'timescale' WHERE key = 'storage_mode'")
        conn.commit()
        refresh(conn, settings, period="2026", force=True)
        conn.commit()
        from_rows = conn.execute(f"SELECT {columns} FROM emissions_daily ORDER BY 1, 2")
        assert from_rows.fetchall() == from_totals  # amounts exact in binary: any order
        again = refresh(conn, settings, period="2026", force=True)
        assert (again.days_recomputed, again.restated) == (0, 0)
