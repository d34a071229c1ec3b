"""The carbon commands as a user runs them: reads are current, quiet when nothing is new,
and every command that prints data speaks --format table|csv|json.

Readings go into ``readings`` as ingest stores them; nothing is derived by the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner

from parkcarbon.cli import cli
from parkcarbon.db import connect
from support import ROOT

TZ = ZoneInfo("Asia/Shanghai")
XJ_2023 = 0.6021e-3  # tCO2/kWh, the Xinjiang grid factor 2026 falls back to
MULTIPLIER = 400  # E01-ELEC-1 counts in units of 400 kWh (config/park.yaml)


def put_readings(conn: psycopg.Connection, meter: str, start: datetime, slots: int) -> None:
    """A cumulative counter read every 15 minutes, one unit per slot."""
    conn.execute(
        "INSERT INTO readings (meter_id, ts, value) "
        "SELECT %s, %s::timestamptz + g * interval '15 minutes', 1000 + g "
        "FROM generate_series(0, %s) g",
        (meter, start, slots),
    )
    conn.commit()


def run(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(PARKCARBON_DATABASE_URL=dsn, PARKCARBON_LOG_LEVEL="INFO")
    return subprocess.run(
        [sys.executable, "-m", "parkcarbon", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )


def runs_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM accounting_runs").fetchone()
    assert row is not None
    return int(row[0])


def test_emissions_derives_new_readings_before_printing(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_readings(conn, "E01-ELEC-1", datetime(2026, 1, 10, tzinfo=TZ), 2 * 96)
    out = run("emissions", "--period", "2026-01", "--format", "json", dsn=migrated_dsn)
    assert out.returncode == 0, out.stderr
    rows = {r["enterprise_id"]: r for r in json.loads(out.stdout)["rows"]}
    kwh = 2 * 96 * MULTIPLIER
    assert rows["E01"]["grid_electricity_kwh"] == pytest.approx(kwh)
    assert rows["E01"]["scope2_co2_t"] == pytest.approx(kwh * XJ_2023)
    with psycopg.connect(migrated_dsn) as conn:  # derived and committed on the way
        assert conn.execute("SELECT count(*) FROM usage").fetchone() == (2 * 96,)


def test_a_second_read_records_no_run_and_logs_nothing_at_info(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn:
        put_readings(conn, "E01-ELEC-1", datetime(2026, 1, 10, tzinfo=TZ), 96)
    first = run("emissions", "--period", "2026-01", dsn=migrated_dsn)
    assert first.returncode == 0, first.stderr
    assert " INFO " in first.stderr  # work done: derivation and accounting run logged
    assert runs_count(migrated_dsn) == 1
    again = run("emissions", "--period", "2026-01", dsn=migrated_dsn)
    assert again.returncode == 0, again.stderr
    assert runs_count(migrated_dsn) == 1
    assert [line for line in again.stderr.splitlines() if " INFO " in line] == []
    assert again.stdout == first.stdout
    nothing = run("emissions", "refresh", "--format", "json", dsn=migrated_dsn)
    assert json.loads(nothing.stdout)["run_id"] is None
    assert runs_count(migrated_dsn) == 1


def test_empty_period_hint_does_not_send_the_user_to_refresh(migrated_dsn: str) -> None:
    out = run("emissions", "--period", "2025-03", dsn=migrated_dsn)
    assert out.returncode == 0, out.stderr
    assert "no usage has been derived from meter readings" in out.stdout
    assert "emissions refresh" not in out.stdout
    assert runs_count(migrated_dsn) == 0  # nothing to account, nothing recorded
    stored = run("emissions", "--period", "2025-03", "--no-refresh", dsn=migrated_dsn)
    assert "run without it to derive new readings" in stored.stdout


@pytest.fixture
def invoke(migrated_dsn: str) -> Iterator[Callable[..., str]]:
    """Run ``parkcarbon ARGS`` in-process; the root logger is restored afterwards (the
    CLI points it at the runner's captured stderr)."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    runner = CliRunner()

    def call(*args: str) -> str:
        result = runner.invoke(
            cli, ["--database-url", migrated_dsn, "--log-level", "WARNING", *args]
        )
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    try:
        yield call
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


DATA_COMMANDS = [
    ("emissions", "--period", "2026-01"),
    ("emissions", "refresh"),
    ("emissions", "diff"),
    ("emissions", "diff", "--green-power"),
    ("emissions", "runs"),
    ("emissions", "factors", "--key", "co2.coal"),
    ("indicators", "--period", "2026-01"),
    ("targets", "status", "--year", "2026"),
    ("targets", "check"),
    ("economics", "load"),
]


def test_every_carbon_command_that_prints_data_takes_format(invoke: Callable[..., str]) -> None:
    for command in DATA_COMMANDS:
        as_json = invoke(*command, "--format", "json")
        json.loads(as_json)
        assert json.loads(invoke(*command, "--json")) is not None  # the hidden alias
        first_line = invoke(*command, "--format", "csv").splitlines()[0]
        assert "," in first_line and " " not in first_line.split(",")[0], (command, first_line)
        assert invoke(*command, "--format", "table").strip(), command
        assert invoke(*command).strip(), command  # table is the default


def test_periods_use_one_syntax(invoke: Callable[..., str]) -> None:
    day = json.loads(invoke("indicators", "--period", "2026-01-15", "--format", "json"))
    assert day["period"] == "2026-01-15"
    year = json.loads(invoke("emissions", "diff", "--period", "2026", "--format", "json"))
    assert year["rows"] == []


def test_each_read_includes_the_readings_received_since_the_last_one(migrated_dsn: str) -> None:
    """Incremental: more readings, the next read shows them, no other command between."""
    def feb_kwh() -> float:
        out = run("emissions", "--period", "2026-02", "--format", "json", dsn=migrated_dsn)
        assert out.returncode == 0, out.stderr
        return float(json.loads(out.stdout)["total"]["grid_electricity_kwh"])

    start = datetime(2026, 2, 1, tzinfo=TZ)
    with connect(migrated_dsn) as conn:
        put_readings(conn, "E01-ELEC-1", start, 96)
    assert feb_kwh() == pytest.approx(96 * MULTIPLIER)
    with connect(migrated_dsn) as conn:
        conn.execute(
            "INSERT INTO readings (meter_id, ts, value) "
            "SELECT 'E01-ELEC-1', %s::timestamptz + g * interval '15 minutes', 1096 + g "
            "FROM generate_series(1, 96) g",
            (start + timedelta(hours=24),),
        )
        conn.commit()
    assert feb_kwh() == pytest.approx(2 * 96 * MULTIPLIER)
