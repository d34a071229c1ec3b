"""`parkcarbon demo` raises alerts from its injected faults with the example rules and
delivers them to a local webhook sink it starts (#13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from support import EXAMPLE_REGISTRY, ROOT, Broker


def test_demo_raises_alerts_from_its_faults(fresh_dsn: str, broker: Broker,
                                            tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(
        PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY),
        PARKCARBON_TARGETS_FILE=str(ROOT / "config" / "targets.yaml"),
        PARKCARBON_ECONOMICS_FILE=str(ROOT / "config" / "economics.yaml"),
        PARKCARBON_CERTIFICATES_FILE=str(ROOT / "config" / "certificates.yaml"),
        PARKCARBON_PRODUCTION_FILE=str(ROOT / "config" / "production.yaml"),
        PARKCARBON_ALERTS_FILE=str(ROOT / "config" / "alerts.yaml"),
        PARKCARBON_DATABASE_URL=fresh_dsn,
        PARKCARBON_MQTT_PORT=str(broker.port),
        PARKCARBON_MQTT_USERNAME=broker.username,
        PARKCARBON_MQTT_PASSWORD=broker.password,
        PARKCARBON_DATA_DIR=str(tmp_path / "unused"),
    )
    proc = subprocess.run([sys.executable, "-m", "parkcarbon", "demo", "--json", "--days", "2"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    alerts = summary["alerts"]
    assert "[demo] alerts: " in proc.stderr
    # the gap (offline), the reset (counter anomaly), the garbage (dead letters)
    assert alerts["by_rule"].get("meter-offline", 0) >= 1
    assert alerts["by_rule"].get("counter-anomaly", 0) >= 1
    assert alerts["by_rule"].get("dead-letters", 0) >= 1
    assert alerts["resolved"] >= 1  # the gap ended: the offline alert resolved
    assert alerts["told"] >= 4 and alerts["notifications"] >= 3
    with psycopg.connect(fresh_dsn) as conn:
        sent = conn.execute("SELECT count(*) FROM alert_outbox WHERE status = 'sent'").fetchone()
        pending = conn.execute("SELECT count(*) FROM alert_outbox WHERE status <> 'sent'"
                               ).fetchone()
    assert sent == (alerts["notifications"],) and pending == (0,)
