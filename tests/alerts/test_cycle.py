"""End to end against PostgreSQL and a real HTTP server: threshold alerts fire after
``for``, notify once in Alertmanager's webhook shape, resolve with a resolve message,
and every state and timer survives a restart."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from alerts_support import T0, Sink, base_config, put_usage, slots

from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.rules import parse_alerts


def _config(sink: Sink, **rule: object):
    doc = base_config(sink.url)
    doc["rules"][0].update(rule)
    return parse_alerts(doc)


def _demand(dsn: str, meter: str, t1, kw: float, n: int = 1) -> None:
    # kW over a 15-minute slot = kWh x 4
    put_usage(dsn, meter, [(ts, kw / 4) for ts in slots(t1, n)])


def _state(dsn: str, rule: str, subject: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state FROM alert_instances WHERE rule_id = %s AND "
                           "subject = %s", (rule, subject)).fetchone()
    return row[0] if row else "normal"


def test_fires_after_for_and_resolves_with_one_message_each(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    config = _config(sink, **{"for": "10m"})
    _demand(dsn, "E01-ELEC-1", T0, 1500, n=4)
    r = run_cycle(settings, registry, config, T0)
    assert _state(dsn, "demand", "E01-ELEC-1") == "pending"
    assert r.delivery.sent == 0 and not sink.requests
    run_cycle(settings, registry, config, T0 + timedelta(minutes=5))
    assert _state(dsn, "demand", "E01-ELEC-1") == "pending"
    run_cycle(settings, registry, config, T0 + timedelta(minutes=10))
    assert _state(dsn, "demand", "E01-ELEC-1") == "firing"
    assert len(sink.requests) == 1
    body = sink.requests[0]["json"]
    assert sink.requests[0]["path"] == "/e01"
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "e01-manager"
    (alert,) = body["alerts"]
    assert alert["labels"]["meter"] == "E01-ELEC-1" and alert["labels"]["enterprise"] == "E01"
    assert alert["labels"]["alertname"] == "demand"
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["startsAt"].startswith("2026-10-12T02:10")
    assert len(alert["fingerprint"]) == 16
    assert "1,500" in alert["annotations"]["summary"] or "1500" in alert["annotations"]["summary"]
    # nothing changed: no second message before repeat_interval
    run_cycle(settings, registry, config, T0 + timedelta(minutes=20))
    assert len(sink.requests) == 1
    # 900 kW: between clear (800) and threshold (1000): still firing (hysteresis)
    t = T0 + timedelta(minutes=30)
    _demand(dsn, "E01-ELEC-1", t, 900)
    run_cycle(settings, registry, config, t)
    assert _state(dsn, "demand", "E01-ELEC-1") == "firing"
    # 700 kW: cleared -> resolved, one resolve message
    t = T0 + timedelta(minutes=45)
    _demand(dsn, "E01-ELEC-1", t, 700)
    run_cycle(settings, registry, config, t)
    assert _state(dsn, "demand", "E01-ELEC-1") == "normal"
    assert len(sink.requests) == 2
    resolved = sink.requests[1]["json"]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"].startswith("2026-10-12T02:45")
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
    run_cycle(settings, registry, config, t + timedelta(minutes=15))
    assert len(sink.requests) == 2


def test_a_pending_alert_of_a_removed_rule_returns_to_normal_without_a_message(
        settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    config = _config(sink, **{"for": "10m"})
    _demand(dsn, "E01-ELEC-1", T0, 1500, n=4)
    run_cycle(settings, registry, config, T0)
    assert _state(dsn, "demand", "E01-ELEC-1") == "pending"
    doc = base_config(sink.url)
    doc["rules"] = []
    run_cycle(settings, registry, parse_alerts(doc), T0 + timedelta(minutes=5))
    assert _state(dsn, "demand", "E01-ELEC-1") == "normal"
    with psycopg.connect(dsn) as conn:
        (reason,) = conn.execute("SELECT note FROM alert_history ORDER BY at DESC, id DESC "
                                 "LIMIT 1").fetchone()
    assert reason == "rule removed or disabled"
    assert not sink.requests  # it never fired: nothing to resolve
