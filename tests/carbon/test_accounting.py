"""Carbon accounting against the real database, with the arithmetic written out.

Usage rows are inserted directly (15-minute slots, canonical units) into a database
with the schema and the example registry (fixture ``migrated_dsn``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import emissions, park_summary, refresh
from parkcarbon.carbon.economics import parse_economics, sync_economics
from parkcarbon.db import connect
from parkcarbon.settings import Settings, load_settings

TZ = ZoneInfo("Asia/Shanghai")
SLOT = timedelta(minutes=15)
XJ_2023 = 0.6021e-3  # tCO2/kWh, Xinjiang provincial 2023 (MEE/NBS)
REMAINDER_2023 = 0.6096e-3  # tCO2/kWh, national excl. market-traded non-fossil 2023
ELEC_TCE = 0.1229e-3  # tce/kWh, GB/T 2589 equivalent value


def put_usage(
    conn: psycopg.Connection, meter: str, start: datetime, end: datetime, total: float
) -> None:
    """Spread ``total`` evenly over the 15-minute slots of [start, end) (local times)."""
    utc = ZoneInfo("UTC")  # aware datetimes of one zone subtract as wall-clock times
    slots = int((end.astimezone(utc) - start.astimezone(utc)) / SLOT)
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) "
        "SELECT %s, g, %s FROM generate_series(%s::timestamptz, %s::timestamptz, %s) g",
        (meter, total / slots, start, end - SLOT, SLOT),
    )
    conn.commit()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def settings_for(dsn: str, **more: object) -> Settings:
    return load_settings(database_url=dsn, **more)


def one(df, enterprise: str):  # type: ignore[no-untyped-def]
    rows = df[df["enterprise_id"] == enterprise]
    assert len(rows) == 1, df
    return rows.iloc[0]


def test_one_million_kwh_at_the_xinjiang_2023_factor(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2023, 6, 1), local(2023, 7, 1), 1_000_000)
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2023-06"), "E01")
        # 1,000,000 kWh x 0.6021 kgCO2/kWh = 602,100 kg = 602.1 t
        assert row["scope2_co2_t"] == pytest.approx(602.1, abs=1e-6)
        assert row["scope1_co2_t"] == 0 and row["scope12_co2_t"] == pytest.approx(602.1)
        # 1,000,000 kWh x 0.1229 kgce/kWh = 122.9 tce
        assert row["tce"] == pytest.approx(122.9, abs=1e-6)
        assert "co2.electricity.location/xinjiang/2023/" in row["factor_ids"]
        assert row["flags"] == ""  # a 2023 period with the 2023 factor: nothing to disclose
        market = one(emissions(conn, period="2023-06", basis="market"), "E01")
        # no green power: 1,000,000 kWh x 0.6096 = 609.6 t
        assert market["scope2_co2_t"] == pytest.approx(609.6, abs=1e-6)
        ets = one(emissions(conn, period="2023-06", basis="ets"), "E01")
        assert ets["scope2_co2_t"] == pytest.approx(570.3, abs=1e-6)  # x 0.5703 t/MWh
        assert ets["unconfirmed"]


def test_later_period_uses_the_latest_earlier_year_and_says_so(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1), local(2026, 2, 1), 1_000_000)
        refresh(conn, settings_for(migrated_dsn))
        df = emissions(conn, period="2026-01")
        assert one(df, "E01")["scope2_co2_t"] == pytest.approx(602.1, abs=1e-6)
        assert "earlier_year:co2.electricity.location:2023" in one(df, "E01")["flags"]
        assert any("the 2023 factor applies (latest earlier year)" in n for n in df.attrs["notes"])


GAS_CO2_PER_GJ = 0.0153 * 0.99 * 44 / 12  # tCO2/GJ: CC x OF x 44/12 (guideline defaults)


def test_natural_gas_co2_and_standard_coal_come_from_one_heating_value(
    migrated_dsn: str, tmp_path: Path
) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E02-GAS-1", local(2026, 2, 1), local(2026, 3, 1), 100_000)
        put_usage(conn, "E03-GAS-1", local(2026, 2, 1), local(2026, 3, 1), 100_000)
        put_usage(conn, "E04-GAS-1", local(2026, 2, 1), local(2026, 3, 1), 100_000)
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2026-02"), "E02")
        # gas-field gas, NCV 35.544 MJ/m3 (GB/T 2589): 3,554.4 GJ
        # CO2 = 3,554.4 GJ x 0.0153 tC/GJ x 0.99 x 44/12 = 197.41 t (not 216.2 t: that is
        # the oil-field NCV 38.931 paired with the gas-field tce coefficient)
        assert row["scope1_co2_t"] == pytest.approx(3554.4 * GAS_CO2_PER_GJ)
        assert row["scope1_co2_t"] == pytest.approx(197.41, abs=0.01)
        assert row["scope2_co2_t"] == 0
        # tce = 3,554.4 GJ / 29.271 GJ/tce = 121.43 tce (= 1.2143 kgce/m3)
        assert row["tce"] == pytest.approx(3554.4 / 29.271)
        assert row["tce"] == pytest.approx(121.43, abs=0.01)
        assert "param.natural_gas.ncv/gas_field/" in row["factor_ids"]
        result = refresh(conn, settings_for(migrated_dsn, natural_gas_kind="oil_field"))
        assert result.restated == 3 * 28  # every day of February 2026, factor changed
        row = one(emissions(conn, period="2026-02"), "E02")
        # oil-field gas, NCV 38.931 MJ/m3: both figures move together
        assert row["tce"] == pytest.approx(3893.1 / 29.271)  # 133.00 tce = 1.3300 kgce/m3
        assert row["scope1_co2_t"] == pytest.approx(3893.1 * GAS_CO2_PER_GJ)  # 216.22 t
        # an enterprise's measured gas quality (the CO2 entry's own NCV) and a meter's
        # measured NCV override the gas kind for both figures
        overrides = tmp_path / "park_factors.yaml"
        overrides.write_text(
            "factors:\n"
            "  - {key: co2.natural_gas, year: 2026, enterprise: E03,\n"
            "     components: {ncv: {value: 360.0, unit: 'GJ / (10000 m**3)'}},\n"
            "     confidence: measured, source: E03 gas quality report}\n"
            "  - {key: param.natural_gas.ncv, year: 2026, meter: E04-GAS-1, value: 34.0,\n"
            "     unit: MJ/m**3, confidence: measured, source: E04 gas chromatograph}\n",
            encoding="utf-8",
        )
        refresh(conn, settings_for(migrated_dsn, factors_file=overrides))
        df = emissions(conn, period="2026-02")
        e03, e04, e02 = one(df, "E03"), one(df, "E04"), one(df, "E02")
        assert e03["scope1_co2_t"] == pytest.approx(3600 * GAS_CO2_PER_GJ)
        assert e03["tce"] == pytest.approx(3600 / 29.271)
        assert "param.natural_gas.ncv" not in e03["factor_ids"]  # its NCV is in the CO2 entry
        assert e04["scope1_co2_t"] == pytest.approx(3400 * GAS_CO2_PER_GJ)
        assert e04["tce"] == pytest.approx(3400 / 29.271)
        assert "param.natural_gas.ncv/any/2026/E04-GAS-1/" in e04["factor_ids"]
        assert e02["tce"] == pytest.approx(121.43, abs=0.01)  # the others keep the kind
        stored = conn.execute(
            "SELECT origin, meter_id FROM carbon_factors WHERE meter_id IS NOT NULL"
        ).fetchall()
        assert stored == [("meter", "E04-GAS-1")]


def test_month_and_year_boundaries_follow_the_park_timezone(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        # 2025-12-31 15:45 UTC = 23:45 local on 31 Dec; 16:00 UTC = 00:00 local on 1 Jan
        put_usage(conn, "E01-ELEC-1", local(2025, 12, 31, 23, 45), local(2026, 1, 1), 100)
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1), local(2026, 1, 1, 0, 15), 1000)
        refresh(conn, settings_for(migrated_dsn))
        for period, kwh in (
            ("2025-12", 100),
            ("2025", 100),
            ("2025-12-31", 100),
            ("2026-01", 1000),
            ("2026", 1000),
            ("2026-01-01", 1000),
        ):
            row = one(emissions(conn, period=period), "E01")
            assert row["grid_electricity_kwh"] == pytest.approx(kwh), period
            assert row["scope2_co2_t"] == pytest.approx(kwh * XJ_2023), period
        days = emissions(conn, period="2025-12-31", freq="day")
        assert str(days.iloc[0]["bucket"]) == "2025-12-31"


def test_pv_self_consumption_is_zero_emission_and_exports_do_not_reduce_scope2(
    migrated_dsn: str,
) -> None:
    with connect(migrated_dsn) as conn:
        day0, day1 = local(2026, 5, 1), local(2026, 5, 2)
        put_usage(conn, "E08-ELEC-1", day0, day1, 1000)  # grid import
        put_usage(conn, "E08-PV-1", day0, day1, 500)  # on-site generation
        put_usage(conn, "E08-EXPORT-1", day0, day1, 200)  # fed to the grid
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2026-05-01"), "E08")
        # Scope 2 = grid import only: 1000 kWh x 0.6021e-3 = 0.6021 t (export not subtracted)
        assert row["scope2_co2_t"] == pytest.approx(1000 * XJ_2023)
        assert row["pv_self_consumed_kwh"] == pytest.approx(300)  # 500 - 200
        # energy consumed: (1000 grid + 300 PV on site) x 0.1229 kgce/kWh = 0.15977 tce
        assert row["tce"] == pytest.approx(1300 * ELEC_TCE)


def test_market_based_scope2_with_green_power_and_certificates(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E05-ELEC-1", local(2026, 3, 1), local(2026, 4, 1), 1_000_000)
        put_usage(conn, "E06-ELEC-1", local(2026, 3, 1), local(2026, 4, 1), 100_000)
        econ = parse_economics(
            {
                "records": [
                    {
                        "enterprise": "E05",
                        "months": "2026-03",
                        "green_power": "30 万kWh",
                        "green_certificates": 100,
                    },  # 300,000 kWh + 100 x 1 MWh = 400,000 kWh
                    {"enterprise": "E06", "months": "2026-03", "green_power": "1 GWh"},
                ]
            }
        )
        sync_economics(conn, econ)
        refresh(conn, settings_for(migrated_dsn))
        market = emissions(conn, period="2026-03", basis="market")
        # (1,000,000 - 400,000) kWh x 0.6096 kgCO2/kWh = 365.76 t
        assert one(market, "E05")["scope2_co2_t"] == pytest.approx(365.76, abs=1e-6)
        assert one(market, "E05")["green_power_kwh"] == pytest.approx(400_000)
        # green power above consumption: Scope 2 is 0, never negative
        assert one(market, "E06")["scope2_co2_t"] == pytest.approx(0.0)
        location = emissions(conn, period="2026-03")
        assert one(location, "E05")["scope2_co2_t"] == pytest.approx(602.1, abs=1e-6)
        # one day of March: the month's green share (40 %) applies to it too
        half = emissions(conn, period="2026-03-10", basis="market")
        assert one(half, "E05")["scope2_co2_t"] == pytest.approx(
            1_000_000 / 31 * 0.6 * REMAINDER_2023
        )


def test_water_is_kept_out_of_scope_1_and_2_and_steam_goes_through_enthalpy(
    migrated_dsn: str,
) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E04-WATER-1", local(2026, 4, 1), local(2026, 5, 1), 10_000)
        put_usage(conn, "E04-STEAM-1", local(2026, 4, 1), local(2026, 5, 1), 100)
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2026-04"), "E04")
        # water: 10,000 m3 x 0.168 kgCO2e/t = 1.68 t, Scope 3 only
        assert row["scope3_water_co2_t"] == pytest.approx(1.68)
        # steam: 100 t x (2777 - 83.74) kJ/kg = 269.326 GJ x 0.11 tCO2/GJ = 29.626 t
        assert row["purchased_heat_gj"] == pytest.approx(269.326)
        assert row["scope2_co2_t"] == pytest.approx(29.62586)
        assert row["scope12_co2_t"] == pytest.approx(29.62586)  # no water in it
        # tce from the same heat: 269.326 GJ x 0.03412 tce/GJ = 9.1894 tce (not the
        # tabulated 0.1286 kgce/kg = 3,764 MJ/t, another enthalpy); water adds none
        assert row["tce"] == pytest.approx(269.326 * 0.03412)
        assert "unconfirmed:param.steam.enthalpy" in row["flags"]
        assert "unconfirmed:co2.water" in row["flags"] and row["unconfirmed"]
        summary = park_summary(conn, "2026-04")
        assert summary.scopes["scope12_co2_t"] == pytest.approx(29.62586)
        assert summary.scopes["scope3_water_co2_t"] == pytest.approx(1.68)


def test_a_meters_declared_steam_enthalpy_gives_both_tco2_and_tce(
    migrated_dsn: str, tmp_path: Path
) -> None:
    overrides = tmp_path / "park_factors.yaml"
    overrides.write_text(
        "factors:\n"
        "  - {key: param.steam.enthalpy, year: 2026, meter: E04-STEAM-1, value: 2950,\n"
        "     unit: kJ/kg, confidence: supplier data sheet, source: park utility contract}\n",
        encoding="utf-8",
    )
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E04-STEAM-1", local(2026, 4, 1), local(2026, 5, 1), 100)
        put_usage(conn, "E06-STEAM-1", local(2026, 4, 1), local(2026, 5, 1), 100)
        refresh(conn, settings_for(migrated_dsn, factors_file=overrides))
        df = emissions(conn, period="2026-04")
        e04, e06 = one(df, "E04"), one(df, "E06")
        heat = 100 * (2950 - 83.74) / 1000  # 286.626 GJ
        assert e04["purchased_heat_gj"] == pytest.approx(heat)
        assert e04["scope2_co2_t"] == pytest.approx(heat * 0.11)
        assert e04["tce"] == pytest.approx(heat * 0.03412)
        assert "unconfirmed:param.steam.enthalpy" not in e04["flags"]  # declared, not default
        assert "unconfirmed:param.steam.enthalpy" in e06["flags"]  # the default stays flagged
        assert e06["tce"] == pytest.approx(269.326 * 0.03412)


def test_sub_meters_are_never_added(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        sub = conn.execute(
            "SELECT id, enterprise_id FROM meters WHERE role = 'sub_meter'"
        ).fetchone()
        main = conn.execute(
            "SELECT id FROM meters WHERE enterprise_id = %s AND role = "
            "'grid_import' AND carrier = 'electricity'",
            (sub[1],),
        ).fetchone()
        put_usage(conn, sub[0], local(2026, 1, 1), local(2026, 1, 2), 650)
        put_usage(conn, main[0], local(2026, 1, 1), local(2026, 1, 2), 1000)
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2026-01-01"), sub[1])
        assert row["grid_electricity_kwh"] == pytest.approx(1000)


def test_factor_change_mid_year_restates_only_the_periods_it_covers(
    migrated_dsn: str,
    tmp_path: Path,
) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E01-ELEC-1", local(2026, 1, 1), local(2027, 1, 1), 365 * 960)
        first = refresh(conn, settings_for(migrated_dsn))
        assert first.days_recomputed == 365
        before = emissions(conn, period="2026", freq="month").set_index("bucket")
        override = tmp_path / "factors.yaml"
        override.write_text(
            "factors:\n"
            "  - {key: co2.electricity.location, region: xinjiang, year: 2026, value: 0.5,\n"
            "     unit: kg/kWh, annual: true, valid_from: 2026-07-01,\n"
            "     confidence: park decision, source: park committee minute 2026-06}\n",
            encoding="utf-8",
        )
        again = refresh(conn, settings_for(migrated_dsn, factors_file=override))
        assert again.restated == 184  # 1 July .. 31 December
        after = emissions(conn, period="2026", freq="month").set_index("bucket")
        from parkcarbon.carbon.restatement import restatements

        diff = restatements(conn, run_id=again.run_id)
        assert [str(b) for b in diff["bucket"]] == [f"2026-{m:02d}-01" for m in range(7, 13)]
        assert set(diff["cause"]) == {"factor_change"}
        for _, d in diff.iterrows():
            month = d["bucket"]
            kwh = before.loc[month, "grid_electricity_kwh"]
            # new - old = kWh x (0.5 - 0.6021) kg/kWh
            assert d["diff_co2_location_t"] == pytest.approx(kwh * (0.5e-3 - XJ_2023))
            assert after.loc[month, "scope2_co2_t"] == pytest.approx(kwh * 0.5e-3)
            assert "/park/" in d["new_factor_ids"] and "/lib/" in d["old_factor_ids"]
        for month in list(after.index)[:6]:
            assert after.loc[month, "scope2_co2_t"] == before.loc[month, "scope2_co2_t"]
        third = refresh(conn, settings_for(migrated_dsn, factors_file=override))
        assert third.restated == 0


def test_late_data_restates_that_day_and_the_difference_is_listed(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E03-ELEC-1", local(2026, 1, 1), local(2026, 2, 1), 31 * 9600)
        refresh(conn, settings_for(migrated_dsn))
        conn.execute(
            "UPDATE usage SET quantity = quantity + 500, derived_at = now() "
            "WHERE meter_id = 'E03-ELEC-1' AND ts = %s",
            (local(2026, 1, 20, 8),),
        )
        conn.commit()
        result = refresh(conn, settings_for(migrated_dsn))
        assert result.restated == 1
        row = conn.execute(
            "SELECT day, cause, new_quantity - old_quantity, "
            "new_co2_location_t - old_co2_location_t FROM restatements "
            "WHERE run_id = %s",
            (result.run_id,),
        ).fetchone()
        assert str(row[0]) == "2026-01-20" and row[1] == "late_data"
        assert row[2] == pytest.approx(500)
        assert row[3] == pytest.approx(500 * XJ_2023)  # 0.30105 t


def test_local_days_in_a_timezone_with_daylight_saving(db_factory) -> None:  # type: ignore[no-untyped-def]
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry
    from support import EXAMPLE_REGISTRY

    dsn = db_factory()
    migrate(dsn, mode="plain", timezone="Europe/Berlin", create_database=False)
    berlin = ZoneInfo("Europe/Berlin")
    with connect(dsn) as conn:
        sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
        # 29 March 2026 has 23 local hours in Berlin: 92 slots of 1 kWh
        put_usage(
            conn,
            "E01-ELEC-1",
            datetime(2026, 3, 28, 23, 45, tzinfo=berlin),
            datetime(2026, 3, 30, tzinfo=berlin),
            93,
        )
        refresh(conn, settings_for(dsn, timezone="Europe/Berlin"))
        days = emissions(conn, period="2026-03", freq="day").set_index("bucket")
        assert [str(d) for d in days.index] == ["2026-03-28", "2026-03-29"]
        assert days["grid_electricity_kwh"].tolist() == pytest.approx([1, 92])


def test_a_meter_declared_sub_meter_later_is_taken_out(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_usage(conn, "E07-ELEC-1", local(2026, 1, 1), local(2026, 1, 3), 2000)
        refresh(conn, settings_for(migrated_dsn))
        row = one(emissions(conn, period="2026-01"), "E07")
        assert row["grid_electricity_kwh"] == pytest.approx(2000)
        conn.execute("UPDATE meters SET role = 'sub_meter' WHERE id = 'E07-ELEC-1'")
        conn.commit()
        result = refresh(conn, settings_for(migrated_dsn))
        assert result.restated == 2  # two days restated to zero
        assert emissions(conn, period="2026-01").empty
