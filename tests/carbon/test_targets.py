"""Targets status, indicators and the carbon commands, against the real database."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import refresh
from parkcarbon.carbon.economics import parse_economics, sync_economics
from parkcarbon.carbon.indicators import indicators
from parkcarbon.carbon.targets import monthly_budgets, parse_targets, targets_status
from parkcarbon.db import connect
from parkcarbon.settings import load_settings
from support import ROOT

TZ = ZoneInfo("Asia/Shanghai")
XJ_2023 = 0.6021e-3  # tCO2/kWh


def put_daily(
    conn: psycopg.Connection, meter: str, first: date, days: int, kwh_per_day: float
) -> None:
    start = datetime(first.year, first.month, first.day, tzinfo=TZ)
    end = start + timedelta(days=days)
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) SELECT %s, g, %s "
        "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 minutes') g",
        (meter, kwh_per_day / 96, start, end - timedelta(minutes=15)),
    )
    conn.commit()


TARGETS = {
    "basis": "location",
    "budget_profile": "days",
    "park": {"annual": {2026: {"cap_co2_t": 100_000}}},
    "enterprises": [
        {"id": "E05", "annual": {2026: {"cap_co2_t": 20_000, "intensity_co2_per_10k_cny": 0.3}}},
        {"id": "E06", "annual": {2026: {"cap_co2_t": 5_000}}},
    ],
}


def test_budget_burn_forecast_and_run_out_date(migrated_dsn: str) -> None:
    targets = parse_targets(TARGETS, "targets", {"E05", "E06"})
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E05-ELEC-1", date(2026, 1, 1), 90, 100_000)  # 1 Jan .. 31 Mar
        sync_economics(
            conn,
            parse_economics(
                {
                    "records": [
                        {
                            "enterprise": "E05",
                            "months": "2026-01..2026-03",
                            "value_added_10k_cny": 5500,
                        }
                    ]
                }
            ),
        )
        refresh(conn, load_settings(database_url=migrated_dsn))
        df = targets_status(
            conn, year=2026, targets=targets, today=date(2026, 3, 31)
        ).set_index("subject")
    e05 = df.loc["E05"]
    assert e05["days_with_data"] == 90 == e05["days_elapsed"]
    assert e05["coverage_pct"] == pytest.approx(100.0)
    daily = 100_000 * XJ_2023  # 60.21 tCO2 per day
    ytd = 90 * daily  # 5,418.9 t
    assert e05["data_through"] == date(2026, 3, 31)
    assert e05["ytd_co2_t"] == pytest.approx(ytd)
    # budget by days: 20,000 t x 90/365 = 4,931.5 t to 31 March
    assert e05["ytd_budget_co2_t"] == pytest.approx(20_000 * 90 / 365)
    assert e05["burn_pct"] == pytest.approx(100 * ytd / 20_000)
    # same pace for the rest of the year: 60.21 t x 365 days = 21,976.65 t
    assert e05["forecast_co2_t"] == pytest.approx(daily * 365)
    # cumulative 5,418.9 + 60.21 k >= 20,000 first at k = ceil(242.17) = 243 days after 31 Mar
    k = math.ceil((20_000 - ytd) / daily)
    assert e05["runout_date"] == date(2026, 3, 31) + timedelta(days=k) == date(2026, 11, 29)
    assert e05["status"] == "at_risk"
    # intensity: 5,418.9 t / (3 x 5,500) 10k CNY = 0.3284 t per 10k CNY
    assert e05["intensity_actual"] == pytest.approx(ytd / 16_500)
    assert df.loc["E06", "status"] == "no_data"
    park = df.loc["PARK"]
    assert park["status"] == "on_track" and park["runout_date"] is None
    assert park["forecast_co2_t"] == pytest.approx(daily * 365)


def test_cap_already_exceeded_and_seasonal_budgets(migrated_dsn: str) -> None:
    seasonal = {
        **TARGETS,
        "budget_profile": "seasonal",
        "seasonal_weights": [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5],
    }
    targets = parse_targets(seasonal, "targets")
    budgets = monthly_budgets(targets, targets.park, 2026)
    assert budgets["budget_co2_t"].sum() == pytest.approx(100_000)
    assert budgets.iloc[0]["budget_co2_t"] == pytest.approx(100_000 * 2 / 12)
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E06-ELEC-1", date(2026, 1, 1), 10, 1_000_000)  # 602.1 t a day
        refresh(conn, load_settings(database_url=migrated_dsn))
        df = targets_status(conn, year=2026, targets=targets).set_index("subject")
    e06 = df.loc["E06"]
    # 5,000 t cap: 8 x 602.1 = 4,816.8 < 5,000 <= 9 x 602.1 = 5,418.9 -> 9 January
    assert e06["status"] == "over_cap" and e06["runout_date"] == date(2026, 1, 9)
    # January budget (seasonal): 5,000 x 2/13, 10 of its 31 days
    assert e06["ytd_budget_co2_t"] == pytest.approx(5_000 * 2 / 12 * 10 / 31)


def test_indicators_per_value_added_per_tce_per_mu(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E05-ELEC-1", date(2026, 1, 1), 31, 100_000)
        put_daily(conn, "E04-PV-1", date(2026, 1, 1), 31, 1_000)
        sync_economics(
            conn,
            parse_economics(
                {
                    "records": [
                        {
                            "enterprise": "E05",
                            "months": "2026-01",
                            "value_added_10k_cny": 5500,
                            "tax_10k_cny": 540,
                            "investment_10k_cny": 1080,
                            "green_power": "155 万kWh",
                        }
                    ]
                }
            ),
        )
        refresh(conn, load_settings(database_url=migrated_dsn))
        df = indicators(conn, period="2026-01").set_index("enterprise_id")
    e05 = df.loc["E05"]
    co2 = 3_100_000 * XJ_2023  # 1,866.51 t
    tce = 3_100_000 * 0.1229e-3  # 380.99 tce
    assert e05["co2_t"] == pytest.approx(co2)
    assert e05["co2_per_10k_cny"] == pytest.approx(co2 / 5500)
    assert e05["tce_per_10k_cny"] == pytest.approx(tce / 5500)
    assert e05["co2_per_tce"] == pytest.approx(co2 / tce)  # = 0.6021/0.1229 = 4.899
    # green power 1,550,000 of 3,100,000 kWh consumed = 50 %
    assert e05["green_power_share_pct"] == pytest.approx(50.0)
    assert e05["non_fossil_share_pct"] == pytest.approx(50.0)
    assert e05["tax_10k_cny_per_mu"] == pytest.approx(1.0)  # 540 / 540 mu
    assert e05["co2_per_mu"] == pytest.approx(co2 / 540)
    e04 = df.loc["E04"]  # PV only: zero emission, all non-fossil, no value added entered
    assert e04["co2_t"] == 0 and e04["non_fossil_share_pct"] == pytest.approx(100.0)
    assert math.isnan(e04["co2_per_10k_cny"])
    park = df.loc["PARK"]
    assert park["land_area_mu"] == 60000
    assert park["co2_t"] == pytest.approx(co2)
    assert park["value_added_10k_cny_per_mu"] == pytest.approx(5500 / 60000)


def _run(*args: str, dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    full.update(env, PARKCARBON_DATABASE_URL=dsn)
    return subprocess.run(
        [sys.executable, "-m", "parkcarbon", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
        timeout=120,
    )


def test_cli_emissions_and_targets_status(migrated_dsn: str, tmp_path: Path) -> None:
    # Usage put directly, not derived from readings: a read without --no-refresh would
    # derive it again from the (empty) readings. Accounted here; the reads print it.
    # (Reads that derive and refresh first: tests/carbon/test_cli.py.)
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E01-ELEC-1", date(2026, 1, 1), 31, 1_000_000 / 31)
        put_daily(conn, "E02-GAS-1", date(2026, 1, 1), 31, 100_000 / 31)
        refresh(conn, load_settings(database_url=migrated_dsn))
        conn.commit()
    out = _run(
        "emissions", "--period", "2026-01", "--format", "json", "--no-refresh", dsn=migrated_dsn
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {r["enterprise_id"]: r for r in data["rows"]}
    assert rows["E01"]["scope2_co2_t"] == pytest.approx(602.1, abs=1e-6)
    assert rows["E02"]["scope1_co2_t"] == pytest.approx(197.41, abs=0.01)  # gas-field NCV
    assert data["total"]["scope12_co2_t"] == pytest.approx(602.1 + 197.41, abs=0.01)
    assert any("latest earlier year" in n for n in data["notes"])
    table = _run("emissions", "--period", "2026-01", "--no-refresh", dsn=migrated_dsn)
    assert table.returncode == 0, table.stderr
    assert "PARK" in table.stdout and "602.1" in table.stdout
    assert "[1] co2.electricity.location: no factor of the period's own year" in table.stdout
    csv = _run(
        "emissions",
        "--period",
        "2026-01",
        "--enterprise",
        "E02",
        "--format",
        "csv",
        "--basis",
        "market",
        "--no-refresh",
        dsn=migrated_dsn,
    )
    assert csv.stdout.splitlines()[0].startswith("enterprise_id,name_zh,bucket")
    assert len(csv.stdout.splitlines()) == 3  # header, E02, the TOTAL row
    assert csv.stdout.splitlines()[2].startswith("TOTAL,")
    status = _run(
        "targets", "status", "--year", "2026", "--format", "json", "--no-refresh", dsn=migrated_dsn
    )
    assert status.returncode == 0, status.stderr
    subjects = {r["subject"]: r for r in json.loads(status.stdout)["rows"]}
    assert subjects["PARK"]["cap_co2_t"] == 1_700_000  # config/targets.yaml
    assert subjects["PARK"]["ytd_co2_t"] == pytest.approx(799.5, abs=0.1)
    bad = _run("emissions", "--period", "2026-13", dsn=migrated_dsn)
    assert bad.returncode == 2
    assert bad.stderr.startswith("parkcarbon: error: period '2026-13'")
    unknown = _run(
        "emissions", "--period", "2026-01", "--enterprise", "E99", "--no-refresh", dsn=migrated_dsn
    )
    assert unknown.returncode == 1 and "unknown enterprise 'E99'" in unknown.stderr


def test_cli_refresh_diff_and_factor_listing(migrated_dsn: str, tmp_path: Path) -> None:
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E01-ELEC-1", date(2026, 1, 1), 2, 1000)
    first = _run("emissions", "refresh", "--json", dsn=migrated_dsn)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["days_recomputed"] == 2
    override = tmp_path / "factors.yaml"
    override.write_text(
        "factors:\n"
        "  - {key: co2.electricity.location, region: xinjiang, year: 2026, value: 0.5,\n"
        "     unit: kg/kWh, annual: true, confidence: test, source: test}\n",
        encoding="utf-8",
    )
    again = _run("emissions", "refresh", dsn=migrated_dsn, PARKCARBON_FACTORS_FILE=str(override))
    assert again.returncode == 0, again.stderr
    assert "2 restated" in again.stdout
    diff = json.loads(
        _run("emissions", "diff", "--by", "day", "--format", "json", dsn=migrated_dsn).stdout
    )
    # 1000 kWh x (0.5 - 0.6021) kg/kWh = -0.1021 t per day
    assert [r["diff_co2_location_t"] for r in diff["rows"]] == pytest.approx([-0.1021] * 2)
    assert all(r["cause"] == "factor_change" for r in diff["rows"])
    factors = json.loads(_run("emissions", "factors", "--format", "json", dsn=migrated_dsn).stdout)[
        "rows"
    ]
    coal = next(f for f in factors if f["key"] == "co2.coal")
    assert coal["unconfirmed"] is True and "IPCC" in coal["source"]


def test_status_of_a_year_without_any_figures_says_so(migrated_dsn: str) -> None:
    """A park whose chain has never run: every subject is no_data, no error."""
    targets = parse_targets(TARGETS, "targets", {"E05", "E06"})
    with connect(migrated_dsn) as conn:
        out = targets_status(conn, year=2026, targets=targets, today=date(2026, 4, 1))
    assert len(out) == 3
    assert set(out["status"]) == {"no_data"}
