"""Every panel of every board, expanded as Grafana expands it, on the demo's park and month
in the run's storage mode; the figures equal what `parkcarbon emissions`, `indicators`
and `targets status` print for the same period."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.targets import load_targets, monthly_budgets
from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.build import build_boards
from parkcarbon.grafana.check import PanelQuery, PanelResult, panel_queries, run_checks, run_query
from parkcarbon.grafana.macros import TimeRange, Variable
from parkcarbon.grafana.panels import BoardContext
from support import EXAMPLE_REGISTRY, ROOT

CTX = BoardContext()
BOARDS = build_boards(CTX)
ALL_SQL = {q.raw_sql for b in BOARDS.values() for q in panel_queries(b)}
TZ = ZoneInfo("Asia/Shanghai")
START, END = datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ)  # conftest
MONTH = TimeRange(START, END)
PERIOD = "2026-11"
ENTERPRISE = "E05"  # a cap of its own and green power purchases (market-based Scope 2)
APPROX = {"rel": 1e-9, "abs": 1e-9}
JSON_APPROX = {"rel": 1e-6, "abs": 2e-6}  # the CLI's JSON rounds to 6 decimals


def cli_json(dsn: str, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(
        PARKCARBON_DATABASE_URL=dsn,
        PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY),
        PARKCARBON_TARGETS_FILE=str(ROOT / "config" / "targets.yaml"),
        PARKCARBON_ECONOMICS_FILE=str(ROOT / "config" / "economics.yaml"),
        PARKCARBON_CERTIFICATES_FILE=str(ROOT / "config" / "certificates.yaml"),
        PARKCARBON_PRODUCTION_FILE=str(ROOT / "config" / "production.yaml"),
        PARKCARBON_LOG_LEVEL="WARNING",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "parkcarbon", *args, "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def conn(seeded_dsn: str) -> Any:
    with psycopg.connect(seeded_dsn) as c:
        yield c


@pytest.fixture(scope="module")
def timescaledb(seeded_dsn: str) -> bool:
    from parkcarbon.db import connect, storage_mode

    with connect(seeded_dsn) as c:
        return storage_mode(c) == "timescale"


@pytest.fixture(scope="module")
def emissions_json(seeded_dsn: str) -> dict[str, Any]:
    return {
        basis: cli_json(seeded_dsn, "emissions", "--period", PERIOD, "--basis", basis)
        for basis in ("location", "market")
    }


def panel(
    conn: psycopg.Connection,
    template: str,
    timescaledb: bool,
    time_range: TimeRange = MONTH,
    enterprise: str = ENTERPRISE,
) -> PanelResult:
    """Run one panel's SQL (which must be on a board) as Grafana would."""
    raw = CTX.sql(template)
    assert raw in ALL_SQL, "not the SQL of any panel"
    q = PanelQuery("test", "test", None, "test", "A", raw, "table")
    result = run_query(
        conn, q, time_range, timescaledb=timescaledb,
        variables={"enterprise": Variable(enterprise)},
    )
    assert result.error is None, (result.error, result.sql)
    return result


def test_every_panel_of_every_board_returns_rows(
    conn: psycopg.Connection, timescaledb: bool, storage_mode: str
) -> None:
    # the month and what arrived since (dead letters are stamped when received: now)
    now = TimeRange(START, datetime.now(UTC) + timedelta(minutes=1))
    results = run_checks(
        conn, BOARDS, now, timescaledb=timescaledb,
        variables={"enterprise": Variable(ENTERPRISE)},
    )
    assert len(results) == len(ALL_SQL) >= 30
    failed = [(r.query.board_uid, r.query.title, r.error) for r in results if r.error]
    assert failed == []
    empty = [(r.query.board_uid, r.query.title) for r in results if not r.rows]
    # the enterprise's meters had no event this month; every other panel has rows
    assert empty == [("parkcarbon-enterprise", "计量事件 Meter events")]
    assert all(r.ms > 0 for r in results)
    assert timescaledb == (storage_mode == "timescale")


def test_timescale_flag_changes_nothing_the_panels_run(conn: psycopg.Connection) -> None:
    # no panel uses $__timeGroup: the datasource flag cannot change a figure
    for tsdb in (False, True):
        for q in panel_queries(BOARDS["park"])[:3]:
            assert "time_bucket" not in run_query(conn, q, MONTH, timescaledb=tsdb).sql


def test_park_period_and_daily_figures_equal_emissions(
    conn: psycopg.Connection, timescaledb: bool, emissions_json: dict[str, Any]
) -> None:
    loc, mkt = emissions_json["location"], emissions_json["market"]
    total = loc["total"]
    (row,) = panel(conn, Q.period_vs_budget(None), timescaledb).records()
    assert row["basis"] == "location"
    assert row["period_co2_t"] == pytest.approx(total["scope12_co2_t"], **JSON_APPROX)
    targets = load_targets(ROOT / "config" / "targets.yaml")
    budget = monthly_budgets(targets, targets.park, 2026)
    nov = float(budget[budget["month"].astype(str) == "2026-11-01"]["budget_co2_t"].iloc[0])
    assert row["period_budget_co2_t"] == pytest.approx(nov, **APPROX)
    assert row["period_vs_budget_pct"] == pytest.approx(100 * row["period_co2_t"] / nov)

    daily = panel(conn, Q.DAILY_EMISSIONS, timescaledb).records()
    assert len(daily) == 30  # local days of November
    first = daily[0]["time"].astimezone(TZ)
    assert (first.day, first.hour, first.minute) == (1, 0, 0)  # local midnight
    for key in ("scope1_co2_t", "scope2_co2_t", "scope12_co2_t"):
        assert sum(r[key] for r in daily) == pytest.approx(total[key], **JSON_APPROX)

    s2 = panel(conn, Q.SCOPE2_BASES, timescaledb).records()
    assert sum(r["scope2_location_co2_t"] for r in s2) == pytest.approx(
        total["scope2_co2_t"], **JSON_APPROX
    )
    assert sum(r["scope2_market_co2_t"] for r in s2) == pytest.approx(
        mkt["total"]["scope2_co2_t"], **JSON_APPROX
    )
    assert mkt["total"]["scope2_co2_t"] < total["scope2_co2_t"]  # green power counted


def test_the_rollups_the_boards_read_equal_emissions_daily(conn: psycopg.Connection) -> None:
    # migration 0013: what the panels read instead of meter rows, on the seeded month
    rollup = conn.execute(
        "SELECT day, enterprise_id, meters, scope1_location_co2_t + scope2_location_co2_t, "
        "grid_kwh, tce_equivalent, scope2_market_grid_co2_t + scope2_market_other_co2_t "
        "FROM emissions_enterprise_day ORDER BY 1, 2").fetchall()
    meter_rows = conn.execute(
        "SELECT day, enterprise_id, count(*)::int, "
        "coalesce(sum(co2_location_t) FILTER (WHERE scope IN ('1', '2')), 0), "
        "coalesce(sum(quantity) FILTER (WHERE carrier = 'electricity' AND scope = '2'), 0), "
        "coalesce(sum(tce_equivalent) FILTER (WHERE scope <> '3'), 0), "
        "coalesce(sum(co2_market_t) FILTER (WHERE scope = '2'), 0) "
        "FROM emissions_daily GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    assert len(rollup) == len(meter_rows) > 30 * 10
    for got, want in zip(rollup, meter_rows, strict=True):
        assert got[:3] == want[:3]
        assert got[3:] == pytest.approx(want[3:], **APPROX)
    park = conn.execute(
        "SELECT day, enterprises, meters, grid_kwh FROM emissions_park_day ORDER BY 1"
    ).fetchall()
    by_day = conn.execute(
        "SELECT day, count(DISTINCT enterprise_id)::int, count(*)::int, coalesce(sum(quantity) "
        "FILTER (WHERE carrier = 'electricity' AND scope = '2'), 0) FROM emissions_daily "
        "GROUP BY 1 ORDER BY 1").fetchall()
    assert [r[:3] for r in park] == [r[:3] for r in by_day]
    assert [r[3] for r in park] == pytest.approx([r[3] for r in by_day], **APPROX)


def test_a_grafana_month_range_gives_the_same_figures(
    conn: psycopg.Connection, timescaledb: bool
) -> None:
    # "now/M" ends at the month's last millisecond; local days are still whole days
    grafana_month = TimeRange(START, END - timedelta(milliseconds=1))
    for template in (Q.period_vs_budget(None), Q.DAILY_EMISSIONS, Q.indicators()):
        exact = panel(conn, template, timescaledb).rows
        assert panel(conn, template, timescaledb, grafana_month).rows == exact


def test_energy_top_emitters_and_indicators_equal_the_cli(
    conn: psycopg.Connection, timescaledb: bool, seeded_dsn: str,
    emissions_json: dict[str, Any],
) -> None:
    loc = emissions_json["location"]
    energy = {(r["carrier"], r["scope"]): r for r in panel(
        conn, Q.energy_by_carrier(), timescaledb).records()}
    total = loc["total"]
    assert energy[("electricity", "2")]["quantity"] == pytest.approx(
        total["grid_electricity_kwh"], **JSON_APPROX)
    assert energy[("natural_gas", "1")]["quantity"] == pytest.approx(
        total["natural_gas_m3"], **JSON_APPROX)
    tce = sum(r["tce"] for k, r in energy.items() if k[1] != "3")
    assert tce == pytest.approx(total["tce"], **JSON_APPROX)

    rows = sorted(loc["rows"], key=lambda r: (-r["scope12_co2_t"], r["enterprise_id"]))[:10]
    top = panel(conn, Q.TOP_EMITTERS, timescaledb).records()
    october = {r["enterprise_id"]: r["scope12_co2_t"] for r in cli_json(
        seeded_dsn, "emissions", "--period", "2026-10")["rows"]}
    assert [t["enterprise_id"] for t in top] == [r["enterprise_id"] for r in rows]
    for t, r in zip(top, rows, strict=True):
        assert t["scope12_co2_t"] == pytest.approx(r["scope12_co2_t"], **JSON_APPROX)
        assert t["share_pct"] == pytest.approx(
            100 * r["scope12_co2_t"] / total["scope12_co2_t"], **JSON_APPROX)
        # October: process emissions only (production data; no meter readings)
        prev = october.get(t["enterprise_id"])
        if prev is None:
            assert t["previous_co2_t"] is None and t["mom_change_pct"] is None
        else:
            assert t["previous_co2_t"] == pytest.approx(prev, **JSON_APPROX)
            assert t["mom_change_pct"] == pytest.approx(
                100 * (t["scope12_co2_t"] - prev) / prev, **JSON_APPROX)

    keys = ("co2_t", "tce", "co2_per_10k_cny", "tce_per_10k_cny", "co2_per_tce", "co2_per_mu",
            "non_fossil_share_pct", "green_power_share_pct")
    # the month (metered every day), and the year: process emissions of days without
    # metered figures and value added matched to the days with them
    year = TimeRange(datetime(2026, 1, 1, tzinfo=TZ), datetime(2027, 1, 1, tzinfo=TZ))
    for period, tr in ((PERIOD, MONTH), ("2026", year)):
        ind = {r["enterprise_id"]: r for r in cli_json(
            seeded_dsn, "indicators", "--period", period)["rows"]}
        got = {r["enterprise_id"]: r for r in panel(
            conn, Q.indicators(), timescaledb, tr).records()}
        assert set(got) == set(ind)
        for ent, want in ind.items():
            for key in keys:
                if want[key] is None:
                    assert got[ent][key] is None, (period, ent, key)
                else:
                    assert got[ent][key] == pytest.approx(want[key], **JSON_APPROX), (
                        period, ent, key)
    got = {r["enterprise_id"]: r for r in panel(conn, Q.indicators(), timescaledb).records()}
    assert got["PARK"]["green_power_share_pct"] > 0
    (park,) = panel(conn, Q.indicators(park_only=True), timescaledb).records()
    assert park == got["PARK"]


def _status_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("cap_co2_t", "ytd_co2_t", "ytd_budget_co2_t", "ytd_vs_budget_pct", "burn_pct",
                "forecast_co2_t", "forecast_vs_cap_pct"):
        assert got[key] == pytest.approx(want[key], **JSON_APPROX), (want["subject"], key)
    assert str(got["data_through"]) == want["data_through"]
    for key in ("days_with_data", "days_elapsed"):
        assert got[key] == want[key], (want["subject"], key)
    assert got["coverage_pct"] == pytest.approx(want["coverage_pct"], **JSON_APPROX)
    assert (None if got["runout_date"] is None else str(got["runout_date"])) == want[
        "runout_date"]
    assert got["status"] == want["status"]


def test_targets_status_and_pathway_equal_targets_status(
    conn: psycopg.Connection, timescaledb: bool, seeded_dsn: str
) -> None:
    want = {r["subject"]: r for r in cli_json(
        seeded_dsn, "targets", "status", "--year", "2026", "--as-of", "2026-11-30")["rows"]}
    rows = {r["subject"]: r for r in panel(conn, Q.targets_status(), timescaledb).records()}
    with_cap = {s for s, r in want.items() if r["cap_co2_t"] is not None}
    assert set(rows) == with_cap and "PARK" in rows and ENTERPRISE in rows
    for subject in with_cap:
        _status_equal(rows[subject], want[subject])
    (park,) = panel(conn, Q.targets_status("PARK"), timescaledb).records()
    assert park == rows["PARK"]
    (ent,) = panel(conn, Q.targets_status("$enterprise"), timescaledb).records()
    assert ent == rows[ENTERPRISE]

    path = panel(conn, Q.PATHWAY, timescaledb).records()
    assert len(path) == 365
    p = want["PARK"]
    at = {r["time"].astimezone(TZ).date().isoformat(): r for r in path}
    last = at[p["data_through"]]
    assert last["cumulative_co2_t"] == pytest.approx(p["ytd_co2_t"], **JSON_APPROX)
    assert path[-1]["forecast_co2_t"] == pytest.approx(p["forecast_co2_t"], **JSON_APPROX)
    (year_budget,), = conn.execute(
        "SELECT sum(budget_co2_t) FROM carbon_budgets WHERE enterprise_id IS NULL "
        "AND month >= '2026-01-01' AND month < '2027-01-01'").fetchall()
    assert path[-1]["cumulative_budget_co2_t"] == pytest.approx(year_budget, rel=1e-9)
    assert path[-1]["cumulative_co2_t"] is None and path[0]["forecast_co2_t"] is None


def test_enterprise_board_equals_emissions_of_the_enterprise(
    conn: psycopg.Connection, timescaledb: bool, seeded_dsn: str
) -> None:
    out = cli_json(seeded_dsn, "emissions", "--period", PERIOD, "--enterprise", ENTERPRISE)
    (want,) = out["rows"]
    (row,) = panel(conn, Q.period_vs_budget("$enterprise"), timescaledb).records()
    assert row["period_co2_t"] == pytest.approx(want["scope12_co2_t"], **JSON_APPROX)
    targets = load_targets(ROOT / "config" / "targets.yaml")
    subject = next(e for e in targets.enterprises if e.id == ENTERPRISE)
    budget = monthly_budgets(targets, subject, 2026)
    nov = float(budget[budget["month"].astype(str) == "2026-11-01"]["budget_co2_t"].iloc[0])
    assert row["period_budget_co2_t"] == pytest.approx(nov, **APPROX)

    carriers = {(r["carrier"], r["scope"]): r for r in panel(
        conn, Q.energy_by_carrier("$enterprise"), timescaledb).records()}
    assert carriers[("electricity", "2")]["quantity"] == pytest.approx(
        want["grid_electricity_kwh"], **JSON_APPROX)
    assert sum(r["tce"] for k, r in carriers.items() if k[1] != "3") == pytest.approx(
        want["tce"], **JSON_APPROX)

    # the load curve is the electricity usage, as kW per 15-minute slot
    load = panel(conn, Q.LOAD_CURVE, timescaledb).records()
    (kwh,) = conn.execute(
        "SELECT sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id "
        "WHERE m.enterprise_id = %s AND m.carrier = 'electricity' AND u.ts >= %s AND u.ts < %s",
        (ENTERPRISE, START, END),
    ).fetchone()
    assert sum(r["kw"] * 0.25 for r in load) == pytest.approx(kwh, rel=1e-9)
    meters = {r["metric"] for r in load}
    assert meters and all(m.startswith(ENTERPRISE) for m in meters)
    # beyond 31 days: the daily mean from usage_daily, the same energy
    long = TimeRange(START - timedelta(days=5), END)
    daily = panel(conn, Q.LOAD_CURVE, timescaledb, long).records()
    assert len(daily) == 30 * len(meters)
    assert sum(r["kw"] * 24 for r in daily) == pytest.approx(kwh, rel=1e-9)

    table = panel(conn, Q.meters("$enterprise"), timescaledb).records()
    assert {r["meter_id"] for r in table} >= meters
    assert all(r["last_reading_at"] is not None for r in table)


def test_data_quality_figures_equal_counts_of_the_stored_rows(
    conn: psycopg.Connection, timescaledb: bool
) -> None:
    (measured, estimated, slots), = conn.execute(
        "SELECT count(*) FILTER (WHERE NOT estimated), count(*) FILTER (WHERE estimated), "
        "count(*) FROM usage WHERE ts >= %s AND ts < %s", (START, END)).fetchall()
    (meters,), = conn.execute("SELECT count(*) FROM meters WHERE active").fetchall()
    expected = meters * 30 * 96
    (park,) = panel(conn, Q.completeness_summary(park_only=True), timescaledb).records()
    assert park["measured_pct"] == pytest.approx(100 * measured / expected, rel=1e-12)
    assert park["estimated_pct"] == pytest.approx(100 * estimated / slots, rel=1e-12)
    assert 90 < park["measured_pct"] < 100 and estimated > 0  # the demo's gap fault
    rows = panel(conn, Q.completeness_summary(), timescaledb).records()
    assert sum(r["days_below_90"] for r in rows[:-1]) == park["days_below_90"]

    daily = panel(conn, Q.COMPLETENESS_DAILY, timescaledb).records()
    assert len(daily) == 30 * len(rows[:-1])
    assert min(r["measured_pct"] for r in daily) < 100

    kinds = {(r["enterprise_id"], r["kind"]): r["events"] for r in panel(
        conn, Q.EVENTS_BY_KIND, timescaledb).records()}
    stored = dict(((e, k), n) for e, k, n in conn.execute(
        "SELECT m.enterprise_id, x.kind, count(*) FROM meter_events x "
        "JOIN meters m ON m.id = x.meter_id WHERE x.ts >= %s AND x.ts < %s GROUP BY 1, 2",
        (START, END)).fetchall())
    assert kinds == stored and {k for _, k in kinds} >= {"gap", "reset"}

    now = TimeRange(START, datetime.now(UTC) + timedelta(minutes=1))
    dead = panel(conn, Q.DEAD_LETTERS, timescaledb, now).records()
    (count,), = conn.execute("SELECT count(*) FROM dead_letters").fetchall()
    assert sum(r["dead_letters"] for r in dead) == count == 5  # the garbage fault

    rate = panel(conn, Q.INGEST_RATE, timescaledb).records()
    assert sum(r["slots_per_hour"] * 24 for r in rate) == pytest.approx(slots)
    two_days = TimeRange(START, START + timedelta(days=2))
    hourly = panel(conn, Q.INGEST_RATE, timescaledb, two_days).records()
    assert len(hourly) == 48

    silent = panel(conn, Q.SILENT_METERS, timescaledb, now).records()
    assert len(silent) == meters  # nothing has reported since the month ended


def test_alerts_board_shows_what_the_alert_tables_hold(
    conn: psycopg.Connection, timescaledb: bool
) -> None:
    (now,) = panel(conn, Q.ALERTS_BY_STATE, timescaledb).records()
    assert now == {"firing": 1, "pending": 1, "recovering": 0, "nodata_or_error": 0}
    active = panel(conn, Q.alerts_active(), timescaledb).records()
    assert [(r["rule_id"], r["state"]) for r in active] == [
        ("budget-burn", "firing"), ("meter-silent", "pending")]
    mine = panel(conn, Q.alerts_active("$enterprise"), timescaledb).records()
    assert mine == active  # both are E05's
    other = panel(conn, Q.alerts_active("$enterprise"), timescaledb, enterprise="E01").records()
    assert other == []
    history = panel(conn, Q.alert_history(), timescaledb).records()
    assert [h["to_state"] for h in history] == ["pending", "firing", "pending"]
    deliveries = {r["channel"]: r for r in panel(conn, Q.DELIVERIES, timescaledb).records()}
    assert (deliveries["email"]["failed"], deliveries["email"]["failed_attempts"]) == (1, 2)
    assert (deliveries["webhook"]["sent"], deliveries["webhook"]["attempts"]) == (1, 1)
    failures = panel(conn, Q.DELIVERY_FAILURES, timescaledb).records()
    assert [f["detail"] for f in failures] == ["550 mailbox unavailable"] * 2
    # outside the range: nothing
    october = TimeRange(START - timedelta(days=31), START)
    assert panel(conn, Q.DELIVERY_FAILURES, timescaledb, october).rows == []


TIGHT_TARGETS = """
basis: location
budget_profile: days
park: {annual: {2026: {cap_co2_t: 150000}}}
enterprises:
  - {id: E01, annual: {2026: {cap_co2_t: 5000}}}
  - {id: E05, annual: {2026: {cap_co2_t: 95000}}}
"""


def test_run_out_dates_and_over_cap_equal_targets_status(
    conn: psycopg.Connection, timescaledb: bool
) -> None:
    import yaml

    from parkcarbon.carbon.accounting import enterprise_ids
    from parkcarbon.carbon.targets import parse_targets, store_budgets, targets_status

    targets = parse_targets(yaml.safe_load(TIGHT_TARGETS), "tight", enterprise_ids(conn))
    with conn.transaction(force_rollback=True):  # the session's budgets stay as they are
        store_budgets(conn, targets, [2026])
        want = {r["subject"]: r for r in targets_status(
            conn, year=2026, targets=targets, as_of=date(2026, 11, 30)).to_dict("records")}
        got = {r["subject"]: r for r in panel(conn, Q.targets_status(), timescaledb).records()}
    assert set(got) == {"PARK", "E01", "E05"}
    assert want["E01"]["status"] == "over_cap" and want["PARK"]["runout_date"] is not None
    for subject, w in want.items():
        g = got[subject]
        assert g["status"] == w["status"], subject
        assert g["runout_date"] == w["runout_date"], subject
        for key in ("ytd_co2_t", "ytd_budget_co2_t", "forecast_co2_t", "burn_pct"):
            assert g[key] == pytest.approx(w[key], **APPROX), (subject, key)
