"""Figures a verifier signs (issue #10): targets and indicators state and respect their
data coverage, budgets are stored for Grafana and reports, targets files are checked,
per-mu figures are labelled, CSV and footnotes say exactly what they hold.

Usage rows are put straight into ``usage`` (one enterprise, one month) in a database
with the schema and the example registry; figures are written out by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import emissions, park_summary, refresh
from parkcarbon.carbon.current import bring_up_to_date
from parkcarbon.carbon.economics import parse_economics, sync_economics
from parkcarbon.carbon.errors import TargetsError
from parkcarbon.carbon.indicators import indicators
from parkcarbon.carbon.targets import (
    monthly_budgets,
    parse_targets,
    stored_budgets,
    targets_status,
    targets_warnings,
)
from parkcarbon.db import connect
from parkcarbon.settings import load_settings
from support import ROOT

TZ = ZoneInfo("Asia/Shanghai")
XJ_2023 = 0.6021e-3  # tCO2/kWh: 2026 falls back to the 2023 Xinjiang factor
NOV_1 = date(2026, 11, 1)
TODAY = date(2026, 12, 1)  # the day after November: 334 days of 2026 elapsed


def put_daily(conn: psycopg.Connection, meter: str, first: date, days: int, per_day: float) -> None:
    start = datetime(first.year, first.month, first.day, tzinfo=TZ)
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) SELECT %s, g, %s "
        "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 minutes') g",
        (meter, per_day / 96, start, start + timedelta(days=days, minutes=-15)),
    )
    conn.commit()


def economics(conn: psycopg.Connection, *records: dict[str, object]) -> None:
    sync_economics(conn, parse_economics({"records": list(records)}))


PARK_AND_E01 = {
    "basis": "location",
    "budget_profile": "days",
    "park": {"annual": {2026: {"cap_co2_t": 400_000}}},
    "enterprises": [{"id": "E01", "annual": {2026: {"cap_co2_t": 250_000}}}],
}


def test_targets_with_one_month_of_data_say_insufficient_data_and_project_its_pace(
    migrated_dsn: str,
) -> None:
    # November only, 1,000,000 kWh a day: 602.1 tCO2 a day, 18,063 t for the month.
    # Before: January..October counted as zero, pace 18,063 / budget to 30 Nov = 4.9 %
    # forecast ~19,900 t, "on_track". Now: the month is compared with its own budget.
    targets = parse_targets(PARK_AND_E01, "targets", {"E01"})
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E01-ELEC-1", NOV_1, 30, 1_000_000)
        economics(conn, {"enterprise": "E01", "months": "2026-01..2026-12",
                         "value_added_10k_cny": 30_000})
        refresh(conn, load_settings(database_url=migrated_dsn))
        df = targets_status(conn, year=2026, targets=targets, today=TODAY).set_index("subject")
        early = targets_status(
            conn, year=2026, targets=targets, today=TODAY, min_coverage_pct=5
        ).set_index("subject")
    e01 = df.loc["E01"]
    daily, month = 1_000_000 * XJ_2023, 30 * 1_000_000 * XJ_2023
    assert e01["days_with_data"] == 30 and e01["days_elapsed"] == 335
    assert e01["coverage_pct"] == pytest.approx(100 * 30 / 335)
    assert e01["ytd_co2_t"] == pytest.approx(month)
    # budget of the days with data only: 250,000 t x 30/365
    assert e01["ytd_budget_co2_t"] == pytest.approx(250_000 * 30 / 365)
    pace = month / (250_000 * 30 / 365)  # 0.879
    assert e01["ytd_vs_budget_pct"] == pytest.approx(100 * pace)
    # the other 335 days of the year at that pace: the year ends at pace x cap
    assert e01["forecast_co2_t"] == pytest.approx(month + pace * 250_000 * 335 / 365)
    assert e01["forecast_co2_t"] == pytest.approx(daily * 365)  # 219,766.5 t, 87.9 %
    assert e01["status"] == "insufficient_data"  # 9 % of the days: not "on_track"
    # intensity: one month of CO2 over the value added of that month, not of eleven
    assert e01["intensity_actual"] == pytest.approx(month / 30_000)
    park = df.loc["PARK"]
    assert park["status"] == "insufficient_data" and park["days_with_data"] == 30
    assert any(
        "PARK: data on 30 of 335 days elapsed (9.0%" in n and "insufficient data" in n
        for n in df.attrs["notes"]
    )
    # with a lower threshold the same data gives a real status
    assert early.loc["E01", "status"] == "on_track"
    assert early.loc["PARK", "status"] == "on_track"


def test_a_gap_in_the_year_is_projected_at_the_pace_not_counted_as_zero(
    migrated_dsn: str,
) -> None:
    targets = parse_targets(PARK_AND_E01, "targets", {"E01"})
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E01-ELEC-1", date(2026, 1, 1), 59, 1_000_000)  # Jan + Feb
        put_daily(conn, "E01-ELEC-1", date(2026, 4, 1), 30, 1_000_000)  # April; March missing
        refresh(conn, load_settings(database_url=migrated_dsn))
        e01 = targets_status(
            conn, year=2026, targets=targets, as_of=date(2026, 4, 30), today=TODAY
        ).set_index("subject").loc["E01"]
    daily = 1_000_000 * XJ_2023  # 602.1 t, cap 250,000 t = 684.9 t a day
    assert e01["days_with_data"] == 89 and e01["days_elapsed"] == 120
    assert e01["status"] == "on_track"  # 74 % coverage: enough for a status
    # March projected at the pace too (before: counted as zero, forecast 163,000 t)
    assert e01["forecast_co2_t"] == pytest.approx(daily * 365)  # 219,766.5 t
    assert e01["ytd_budget_co2_t"] == pytest.approx(250_000 * 89 / 365)
    assert e01["runout_date"] is None  # 250,000 / 602.1 = 415 days: not this year


def test_enterprise_budget_profile_of_its_own_and_weights_that_do_not_sum_to_12(
    migrated_dsn: str,
) -> None:
    weights = [1.2, 1.1, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.1, 1.2]  # sum 12
    data = {
        **PARK_AND_E01,
        "budget_profile": "seasonal",
        "seasonal_weights": weights,
        "enterprises": [
            {"id": "E01", "annual": {2026: {"cap_co2_t": 250_000}}},
            {"id": "E11", "budget_profile": "days", "annual": {2026: {"cap_co2_t": 36_500}}},
        ],
    }
    targets = parse_targets(data, "targets", {"E01", "E11"})
    park = monthly_budgets(targets, targets.park, 2026)
    e11 = monthly_budgets(targets, targets.enterprises[1], 2026)
    assert park.iloc[0]["budget_co2_t"] == pytest.approx(400_000 * 1.2 / 12)
    assert e11.iloc[0]["budget_co2_t"] == pytest.approx(36_500 * 31 / 365)  # flat: by days
    assert e11.iloc[1]["budget_co2_t"] == pytest.approx(36_500 * 28 / 365)
    assert targets.profile(targets.enterprises[1]) == "own days"
    with pytest.raises(TargetsError) as err:
        parse_targets({**data, "seasonal_weights": [0.5] * 12}, "targets.yaml")
    assert "seasonal_weights: Value error, the 12 weights sum to 6.00, not 12" in str(err.value)
    assert "not normalised" in str(err.value)


def test_targets_file_checks_against_the_registry_and_the_park_cap(
    migrated_dsn: str, tmp_path: Path
) -> None:
    over = {
        **PARK_AND_E01,
        "enterprises": [
            {"id": "E01", "annual": {2026: {"cap_co2_t": 450_000}}},
            {"id": "E77", "annual": {2026: {"cap_co2_t": 1_000}}},
        ],
    }
    with pytest.raises(TargetsError) as err:
        parse_targets(over, "targets.yaml", {"E01", "E02"})
    problems = err.value.problems
    assert "targets.yaml: enterprises[1] (E77): id: unknown enterprise 'E77' (not in the " \
        "registry)" in problems
    assert (
        "targets.yaml: enterprises[0] (E01): 2026 cap 450,000 tCO2 is above the park's cap "
        "400,000 tCO2" in problems
    )
    summed = {
        **PARK_AND_E01,
        "enterprises": [
            {"id": "E01", "annual": {2026: {"cap_co2_t": 250_000}}},
            {"id": "E02", "annual": {2026: {"cap_co2_t": 200_000}}},
        ],
    }
    targets = parse_targets(summed, "targets.yaml", {"E01", "E02"})
    assert targets_warnings(targets) == [
        "targets.yaml: 2026: enterprise caps sum to 450,000 tCO2, above the park's cap "
        "400,000 tCO2 (by 50,000 t)"
    ]
    # `targets check` reads the registry file (no database needed) and prints warnings
    bad = tmp_path / "targets.yaml"
    bad.write_text(
        "park: {annual: {2026: {cap_co2_t: 400000}}}\n"
        "enterprises:\n  - {id: E77, annual: {2026: {cap_co2_t: 1000}}}\n",
        encoding="utf-8",
    )
    out = _run("targets", "check", dsn=migrated_dsn, PARKCARBON_TARGETS_FILE=str(bad))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "unknown enterprise 'E77'" in out.stderr and "Traceback" not in out.stderr
    warn = tmp_path / "warn.yaml"
    warn.write_text(
        "park: {annual: {2026: {cap_co2_t: 400000}}}\nenterprises:\n"
        "  - {id: E01, annual: {2026: {cap_co2_t: 250000}}}\n"
        "  - {id: E02, annual: {2026: {cap_co2_t: 200000}}}\n",
        encoding="utf-8",
    )
    ok = _run("targets", "check", "--format", "json", dsn=migrated_dsn,
              PARKCARBON_TARGETS_FILE=str(warn))
    assert ok.returncode == 0, ok.stderr
    assert "enterprise caps sum to 450,000 tCO2" in json.loads(ok.stdout)["warnings"][0]


def test_every_refresh_stores_the_budgets_targets_status_uses(
    migrated_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        "basis: location\nbudget_profile: seasonal\n"
        "seasonal_weights: [1.2, 1.1, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.1, 1.2]\n"
        "park: {annual: {2026: {cap_co2_t: 400000, intensity_co2_per_10k_cny: 2.0}}}\n"
        "enterprises:\n  - {id: E11, budget_profile: days, annual: {2026: {cap_co2_t: 36500}}}\n",
        encoding="utf-8",
    )
    settings = load_settings(
        database_url=migrated_dsn, targets_file=path, economics_file=tmp_path / "none.yaml"
    )
    with connect(migrated_dsn) as conn:
        # readings as ingest stores them (the read derives usage from them first)
        conn.execute(
            "INSERT INTO readings (meter_id, ts, value) SELECT 'E11-ELEC-1', "
            "%s::timestamptz + g * interval '15 minutes', 1000 + g FROM generate_series(0, %s) g",
            (datetime(2026, 11, 1, tzinfo=TZ), 30 * 96),
        )
        conn.commit()
        bring_up_to_date(conn, settings)
        conn.commit()
        stored = stored_budgets(conn, 2026)
        park = stored[stored["enterprise_id"].isna()].set_index("month")
        e11 = stored[stored["enterprise_id"] == "E11"].set_index("month")
        assert len(park) == 12 == len(e11)
        assert park.loc[NOV_1, "budget_co2_t"] == pytest.approx(400_000 * 1.1 / 12)
        assert park.loc[NOV_1, "cap_co2_t"] == 400_000
        assert park.loc[NOV_1, "intensity_co2_per_10k_cny"] == 2.0
        assert park.loc[NOV_1, "profile"] == "seasonal"
        assert park.loc[NOV_1, "cap_source"] == "annual"
        assert e11.loc[NOV_1, "budget_co2_t"] == pytest.approx(36_500 * 30 / 365)
        assert e11.loc[NOV_1, "profile"] == "own days"
        # the budget of the days with data in `targets status` is the stored month's
        from parkcarbon.carbon.targets import load_targets

        status = targets_status(
            conn, year=2026, targets=load_targets(path), today=TODAY
        ).set_index("subject")
        assert status.loc["E11", "ytd_budget_co2_t"] == pytest.approx(
            e11.loc[NOV_1, "budget_co2_t"]
        )
        stamp = conn.execute("SELECT max(updated_at) FROM carbon_budgets").fetchone()
        # unchanged file: nothing rewritten; a changed cap: rewritten; no file: removed
        assert bring_up_to_date(conn, settings).budgets_changed == 0
        conn.commit()
        assert conn.execute("SELECT max(updated_at) FROM carbon_budgets").fetchone() == stamp
        path.write_text(path.read_text().replace("36500", "40000"), encoding="utf-8")
        assert bring_up_to_date(conn, settings).budgets_changed == 12
        conn.commit()
        row = conn.execute(
            "SELECT budget_co2_t FROM carbon_budgets WHERE enterprise_id = 'E11' "
            "AND month = '2026-11-01'"
        ).fetchone()
        assert row is not None and row[0] == pytest.approx(40_000 * 30 / 365)
        path.unlink()
        bring_up_to_date(conn, settings)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM carbon_budgets").fetchone() == (0,)


def test_indicators_over_a_year_divide_by_the_value_added_of_the_days_with_data(
    migrated_dsn: str,
) -> None:
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E01-ELEC-1", NOV_1, 30, 1_000_000)
        put_daily(conn, "E05-ELEC-1", NOV_1, 15, 100_000)  # half of November
        economics(
            conn,
            {"enterprise": "E01", "months": "2026-01..2026-12", "value_added_10k_cny": 30_000},
            {"enterprise": "E05", "months": "2026-01..2026-12", "value_added_10k_cny": 6_000},
        )
        refresh(conn, load_settings(database_url=migrated_dsn))
        year = indicators(conn, period="2026").set_index("enterprise_id")
        month = indicators(conn, period="2026-11").set_index("enterprise_id")
    e01_co2 = 30 * 1_000_000 * XJ_2023  # 18,063 t
    e05_co2 = 15 * 100_000 * XJ_2023
    e01 = year.loc["E01"]
    assert e01["value_added_10k_cny"] == 12 * 30_000  # reported as entered
    assert e01["value_added_matched_10k_cny"] == pytest.approx(30_000)  # November only
    # 18,063 / 30,000 = 0.602 (before: / 360,000 = 0.050)
    assert e01["co2_per_10k_cny"] == pytest.approx(e01_co2 / 30_000)
    assert e01["co2_per_10k_cny"] == pytest.approx(month.loc["E01", "co2_per_10k_cny"])
    assert e01["data_days"] == 30 and e01["period_days"] == 365
    e05 = month.loc["E05"]
    assert e05["value_added_matched_10k_cny"] == pytest.approx(6_000 * 15 / 30)
    assert e05["co2_per_10k_cny"] == pytest.approx(e05_co2 / 3_000)
    park = year.loc["PARK"]
    assert park["value_added_matched_10k_cny"] == pytest.approx(30_000 + 3_000)
    assert park["co2_per_10k_cny"] == pytest.approx((e01_co2 + e05_co2) / 33_000)
    assert park["data_days"] == 30
    assert any(
        n.startswith("E01: figures on 30 of 365 days of 2026") for n in year.attrs["notes"]
    )
    # per mu: the park's whole land and the enterprises' industrial land, both labelled
    assert park["land_area_mu"] == 60_000 and park["industrial_land_mu"] == 8_775
    assert park["co2_per_mu"] == pytest.approx((e01_co2 + e05_co2) / 60_000)
    assert park["co2_per_industrial_mu"] == pytest.approx((e01_co2 + e05_co2) / 8_775)
    assert month.attrs["period_kind"] == "month"
    assert any("per-mu figures are monthly (2026-11)" in n for n in month.attrs["notes"])


def _run(*args: str, dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    full.update(env, PARKCARBON_DATABASE_URL=dsn)
    return subprocess.run(
        [sys.executable, "-m", "parkcarbon", *args],
        capture_output=True, text=True, cwd=ROOT, env=full, timeout=120,
    )


def test_output_details_csv_precision_park_row_labels_and_ets_footnote(
    migrated_dsn: str,
) -> None:
    with connect(migrated_dsn) as conn:
        # 44,459,013.2 kWh over November: a sum that prints with float noise as repr
        put_daily(conn, "E01-ELEC-1", NOV_1, 30, 44_459_013.2 / 30)
        put_daily(conn, "E02-ELEC-1", NOV_1, 30, 1_000.1)
        refresh(conn, load_settings(database_url=migrated_dsn))
        conn.commit()
    csv = _run("emissions", "--period", "2026-11", "--format", "csv", "--no-refresh",
               dsn=migrated_dsn)
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.splitlines()
    header = lines[0].split(",")
    rows = {line.split(",")[0]: dict(zip(header, line.split(","), strict=True))
            for line in lines[1:]}
    assert set(rows) == {"E01", "E02", "PARK"}  # the park total is a row
    assert rows["E01"]["grid_electricity_kwh"] == "44459013.2"
    assert float(rows["PARK"]["grid_electricity_kwh"]) == pytest.approx(44_459_013.2 + 30_003)
    for line in lines[1:]:
        for cell in line.split(","):
            if cell.replace(".", "").replace("-", "").isdigit() and "." in cell:
                assert len(cell.split(".")[1]) <= 6, line
    table = _run("indicators", "--period", "2026-11", "--no-refresh", dsn=migrated_dsn)
    assert table.returncode == 0, table.stderr
    assert "tCO2/mu (monthly)" in table.stdout and "tCO2/industrial mu (monthly)" in table.stdout
    ets = _run("emissions", "--period", "2026-11", "--basis", "ets", "--format", "json",
               "--no-refresh", dsn=migrated_dsn)
    notes = json.loads(ets.stdout)["notes"]
    # the ETS factor ends 2025-12-31: none of November 2026 has one (not "part of" it)
    assert "co2.electricity.ets: no factor applies to any day of 2026-11; those figures " \
        "are missing" in notes
    assert not any("part of" in n for n in notes)


def test_usage_gaps_name_units_and_a_finished_feed_is_one_line(migrated_dsn: str) -> None:
    # (lives here: issue #10 point 9 gave `usage gaps` output to accounting.) Two meters
    # report until two days ago, a third stops six hours earlier; E01 misses two hours.
    end = datetime.now(TZ).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    start = end - timedelta(days=1)
    with connect(migrated_dsn) as conn:
        for meter, stop in (
            ("E01-ELEC-1", end), ("E02-GAS-1", end), ("E03-GAS-1", end - timedelta(hours=6))
        ):
            conn.execute(
                "INSERT INTO readings (meter_id, ts, value) "
                "SELECT %s, t, 1000 + extract(epoch FROM t - %s) / 900 "
                "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 minutes') t "
                "WHERE NOT (%s = 'E01-ELEC-1' AND t > %s AND t < %s)",
                (meter, start, start, stop, meter, start + timedelta(hours=4),
                 start + timedelta(hours=6)),
            )
        conn.commit()
    assert _run("usage", "derive", dsn=migrated_dsn).returncode == 0
    out = _run("usage", "gaps", dsn=migrated_dsn)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    gap = next(line for line in lines if line.startswith("E01-ELEC-1") and "gap" in line)
    assert gap.rstrip().endswith(" kWh")  # 400 kWh per unit x 8 slots, in its unit
    assert any(line.startswith("no reading from any meter since") for line in lines)
    silent = {line.split()[0] for line in lines if " silent since " in line}
    assert "E03-GAS-1" in silent  # stopped while the others reported
    assert "E01-ELEC-1" not in silent and "E02-GAS-1" not in silent  # the feed just ended
    data = json.loads(_run("usage", "gaps", "--format", "json", dsn=migrated_dsn).stdout)
    assert {r["unit"] for r in data if r["kind"] == "gap"} == {"kWh"}


def test_process_emissions_of_clinker_and_lime_are_their_own_scope_1_line(
    migrated_dsn: str, tmp_path: Path
) -> None:
    from parkcarbon.carbon.process import load_production, sync_production

    path = tmp_path / "production.yaml"
    path.write_text(
        "records:\n"
        "  - {enterprise: E12, months: 2026-11, product: clinker, output_t: 20000,\n"
        "     cao_pct: 65.5, mgo_pct: 1.8, cao_noncarbonate_pct: 0.4, kiln_dust_t: 400}\n"
        "  - {enterprise: E12, months: 2026-10, product: clinker, output_t: 10000}\n"
        "  - {enterprise: E07, months: 2026-11, product: lime, output_t: 1000, cao_pct: 90,\n"
        "     mgo_pct: 2}\n",
        encoding="utf-8",
    )
    with connect(migrated_dsn) as conn:
        put_daily(conn, "E12-COAL-1", NOV_1, 30, 100)
        sync_production(conn, load_production(path, {"E12", "E07"}))
        refresh(conn, load_settings(database_url=migrated_dsn))
        nov = emissions(conn, period="2026-11").set_index("enterprise_id")
        oct_ = emissions(conn, period="2026-10").set_index("enterprise_id")
        day = emissions(conn, period="2026-11-15").set_index("enterprise_id")
        summary = park_summary(conn, "2026-11")
        ind = indicators(conn, period="2026-11").set_index("enterprise_id")
        again = sync_production(conn, load_production(path, {"E12", "E07"}))
    # NDRC cement guideline: (20,000 + 400) t x [(65.5 - 0.4) % x 44/56 + 1.8 % x 44/40]
    clinker = 20_400 * (0.651 * 44 / 56 + 0.018 * 44 / 40)  # 10,838.5 t
    assert nov.loc["E12", "scope1_process_co2_t"] == pytest.approx(clinker)
    coal = 3000 * 1.978  # 30 days x 100 t coal (UNCONFIRMED IPCC factor)
    assert nov.loc["E12", "scope1_co2_t"] == pytest.approx(coal + clinker)
    assert nov.loc["E12", "scope12_co2_t"] == pytest.approx(coal + clinker)
    # lime: 1,000 t x (90 % x 44/56 + 2 % x 44/40) = 729.1 t; E07 has no metered figures
    lime = 1000 * (0.9 * 44 / 56 + 0.02 * 44 / 40)
    assert nov.loc["E07", "scope1_process_co2_t"] == pytest.approx(lime)
    assert nov.loc["E07", "scope2_co2_t"] == 0 and not nov.loc["E07", "unconfirmed"]
    # October: no composition, the IPCC Tier 1 default 0.52 x 1.02, flagged
    assert oct_.loc["E12", "scope1_process_co2_t"] == pytest.approx(10_000 * 0.52 * 1.02)
    assert oct_.loc["E12", "unconfirmed"]
    notes = oct_.attrs["notes"]
    assert any("process.clinker_tier1" in n and "UNCONFIRMED" in n for n in notes)
    # a day gets its month's figure / days of the month
    assert day.loc["E12", "scope1_process_co2_t"] == pytest.approx(clinker / 30)
    assert summary.scopes["scope1_process_co2_t"] == pytest.approx(clinker + lime)
    assert ind.loc["E12", "co2_t"] == pytest.approx(coal + clinker)
    assert again == 0  # the same file again writes nothing
    # coverage counts metered days: October's production alone does not cover October
    with connect(migrated_dsn) as conn:
        economics(conn, {"enterprise": "E12", "months": "2026-10..2026-11",
                         "value_added_10k_cny": 3000})
        targets = parse_targets(
            {"park": {"annual": {2026: {"cap_co2_t": 400_000}}},
             "enterprises": [{"id": "E12", "annual": {2026: {"cap_co2_t": 300_000}}}]},
            "targets", {"E12"},
        )
        status = targets_status(conn, year=2026, targets=targets, today=TODAY)
        year = indicators(conn, period="2026").set_index("enterprise_id")
    e12 = status.set_index("subject").loc["E12"]
    assert e12["days_with_data"] == 30 and e12["ytd_co2_t"] == pytest.approx(coal + clinker)
    # intensity: November's CO2 (coal + its process) over November's value added; the
    # process emissions of October (no metered figures) stay out of the numerator
    assert year.loc["E12", "co2_unmetered_process_t"] == pytest.approx(10_000 * 0.52 * 1.02)
    assert year.loc["E12", "co2_per_10k_cny"] == pytest.approx((coal + clinker) / 3000)
    with pytest.raises(TargetsError) as err:
        load_production(path, {"E12"})
    assert "records[2] (E07 2026-11): enterprise: unknown enterprise 'E07'" in str(err.value)


def test_certificate_claims_need_cancelled_unbundled_certificates_of_the_year(
    migrated_dsn: str, tmp_path: Path
) -> None:
    from parkcarbon.carbon.certificates import check_claims, parse_register

    econ = parse_economics(
        {"records": [{"enterprise": "E11", "months": "2026-01..2026-02",
                      "value_added_10k_cny": 2000, "green_certificates": 500}]},
        "economics.yaml",
    )
    good = {"enterprise": "E11", "serials": "GEC-2026-1001..GEC-2026-2000", "mwh": 1000,
            "generation": "2026-01..2026-02", "cancelled_on": "2026-03-10"}
    check_claims(econ, parse_register({"certificates": [good]}))  # 1,000 MWh cover 2 x 500
    cases = {
        "not cancelled": {**good, "cancelled_on": None},
        "generated outside 2026": {**good, "generation": "2025-11..2026-01"},
        "bundled with contract GP-1": {**good, "contract": "GP-1"},
    }
    for reason, entry in cases.items():
        with pytest.raises(TargetsError) as err:
            check_claims(econ, parse_register({"certificates": [entry]}, "register.yaml"))
        text = str(err.value)
        assert "E11 2026: 1,000 MWh of green certificates claimed, 0 MWh cancelled" in text
        assert reason in text, text
    other = {**good, "enterprise": "E05"}  # cancelled for another enterprise
    with pytest.raises(TargetsError):
        check_claims(econ, parse_register({"certificates": [other]}))
    with pytest.raises(TargetsError, match="no certificate register"):
        check_claims(econ, None)  # no register at all: no claim has evidence
    with pytest.raises(TargetsError) as err:
        parse_register({"certificates": [good, {**good, "serials": "GEC-2026-1500..GEC-2026-2499"},
                                         {**good, "mwh": 999}]}, "register.yaml")
    assert "serials overlap certificates[0]" in str(err.value)
    assert "mwh 999 but the serials count 1,000 certificates" in str(err.value)
    # through a read: the refused claim is one clear line, nothing is stored
    econ_file = tmp_path / "economics.yaml"
    econ_file.write_text(
        "records:\n  - {enterprise: E11, months: 2026-01, green_certificates: 500}\n",
        encoding="utf-8",
    )
    reg = tmp_path / "certificates.yaml"
    reg.write_text(
        "certificates:\n  - {enterprise: E11, serials: GEC-1..GEC-500, mwh: 500,\n"
        "     generation: 2026-01, contract: GP-9, cancelled_on: 2026-02-01}\n",
        encoding="utf-8",
    )
    out = _run("economics", "load", "--file", str(econ_file), dsn=migrated_dsn,
               PARKCARBON_CERTIFICATES_FILE=str(reg))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "bundled with contract GP-9" in out.stderr and "Traceback" not in out.stderr
    reg.write_text(reg.read_text().replace(", contract: GP-9", ""), encoding="utf-8")
    ok = _run("economics", "load", "--file", str(econ_file), dsn=migrated_dsn,
              PARKCARBON_CERTIFICATES_FILE=str(reg))
    assert ok.returncode == 0, ok.stderr
    with psycopg.connect(migrated_dsn) as conn:
        stored = conn.execute(
            "SELECT enterprise_id, serial_first, serial_last, mwh, cancelled_on "
            "FROM green_certificates"
        ).fetchall()
    assert stored == [("E11", 1, 500, 500.0, date(2026, 2, 1))]


def test_the_factor_library_cites_primary_sources_not_a_local_file() -> None:
    from importlib import resources

    text = resources.files("parkcarbon.carbon").joinpath("data/factors.yaml").read_text("utf-8")
    header = text[: text.index("factors:\n")]
    assert "/work/" not in text and "reference/factors.md" not in text
    for source in ("2024 No.12", "2024 No.33", "2025 No.47", "GB/T 2589-2020",
                   "GB/T 32150-2015", "IPCC 2006", "GB/T 51366-2019"):
        assert source in header, source
