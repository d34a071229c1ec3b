"""Grouping, repeat, escalation, acknowledgement with expiry, silences, inhibition,
quiet hours and isolation, with an injected clock against PostgreSQL and a real HTTP
server."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from alerts_support import T0, Sink, base_config, put_readings, put_usage, slots
from psycopg.types.json import Jsonb

from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.models import AlertsConfig
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.alerts.state import acknowledge


def _hot(dsn: str, t1, *meters: str, kw: float = 1500, since=None) -> None:
    """Demand ``kw`` on every slot from an hour before ``since`` (default T0) to ``t1``."""
    since = since or T0
    n = int((t1 - since).total_seconds() // 900) + 4
    for m in meters:
        put_usage(dsn, m, [(ts, kw / 4) for ts in slots(t1, n)])


def _paths(sink: Sink) -> list[str]:
    return [r["path"] for r in sink.requests]


def _alert_id(dsn: str, rule: str, subject: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id FROM alert_instances WHERE rule_id = %s AND subject = %s",
                           (rule, subject)).fetchone()
    assert row is not None
    return int(row[0])


def test_grouping_repeat_escalation_and_ack(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["rules"][0]["meters"] = ["E01-ELEC-1", "E04-PV-1", "E02-ELEC-1"]
    doc["recipients"][0]["group_by"] = ["rule", "enterprise"]
    doc["channels"].append({"id": "e04-hook", "type": "webhook", "enterprise": "E04",
                            "url": f"{sink.url}/e04"})
    doc["recipients"].append({"id": "e04-manager", "enterprise": "E04",
                              "channels": ["e04-hook"]})
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, T0 + timedelta(hours=6), "E01-ELEC-1", "E04-PV-1", "E02-ELEC-1")
    run_cycle(settings, registry, config, T0)
    # one message per recipient, each only with its own enterprise's alert
    assert sorted(_paths(sink)) == ["/e01", "/e02", "/e04"]
    for r in sink.requests:
        ents = {a["labels"]["enterprise"] for a in r["json"]["alerts"]}
        assert ents == {r["path"][1:].upper()}
    sink.requests.clear()
    # E01 acknowledges at +10 min for 1 h
    now = T0 + timedelta(minutes=10)
    with psycopg.connect(dsn) as conn:
        acknowledge(conn, _alert_id(dsn, "demand", "E01-ELEC-1"), by="王工",
                    until=now + timedelta(hours=1), comment="换表中", now=now)
    # +30 min: E02's and E04's unacknowledged alerts escalate to the park officer (one
    # group for the officer, both alerts), E01's acknowledged one does not
    run_cycle(settings, registry, config, T0 + timedelta(minutes=30))
    assert _paths(sink) == ["/park"]
    body = sink.requests[0]["json"]
    assert body["notification_reason"] == "escalation"
    assert sorted(a["labels"]["meter"] for a in body["alerts"]) == ["E02-ELEC-1", "E04-PV-1"]
    sink.requests.clear()
    # +4 h 30: repeats for the enterprises (E01's ack expired at +1 h 10), and E01's
    # alert, unacknowledged again, now escalates to the officer too
    run_cycle(settings, registry, config, T0 + timedelta(hours=4, minutes=30))
    reasons = {r["path"]: r["json"]["notification_reason"] for r in sink.requests}
    assert reasons == {"/e01": "repeat", "/e02": "repeat", "/e04": "repeat",
                       "/park": "escalation"}
    park = next(r["json"] for r in sink.requests if r["path"] == "/park")
    assert len(park["alerts"]) == 3
    sink.requests.clear()
    # an ack holds back the repeat
    now = T0 + timedelta(hours=5)
    with psycopg.connect(dsn) as conn:
        acknowledge(conn, _alert_id(dsn, "demand", "E02-ELEC-1"), by="李工",
                    until=now + timedelta(hours=8), comment=None, now=now)
    run_cycle(settings, registry, config, T0 + timedelta(hours=9))
    assert sorted(_paths(sink)) == ["/e01", "/e04", "/park"]  # park still has E04 unacked
    acked = [a for r in sink.requests if r["path"] == "/park" for a in r["json"]["alerts"]
             if a["labels"]["meter"] == "E02-ELEC-1"]
    assert acked and acked[0]["annotations"]["acked_by"] == "李工"


def test_group_wait_swallows_a_flap(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["defaults"]["group_wait"] = "2m"
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, T0, "E01-ELEC-1")
    run_cycle(settings, registry, config, T0)
    assert not sink.requests  # waiting for group_wait
    put_usage(dsn, "E01-ELEC-1", [(ts, 100.0) for ts in slots(T0 + timedelta(minutes=15), 1)])
    run_cycle(settings, registry, config, T0 + timedelta(minutes=15))
    run_cycle(settings, registry, config, T0 + timedelta(minutes=30))
    assert not sink.requests  # fired and resolved within group_wait: nothing to say
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_groups").fetchone() == (0,)


def test_silence_mutes_then_expiry_notifies(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    config = parse_alerts(doc, "a", registry)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO alert_silences (enterprise_id, matchers, starts_at, ends_at, "
                     "author, reason) VALUES ('E01', %s, %s, %s, 'ops', 'maintenance')",
                     (Jsonb([{"label": "meter", "op": "=", "value": "E01-ELEC-1"}]),
                      T0 - timedelta(hours=1), T0 + timedelta(hours=1)))
    _hot(dsn, T0 + timedelta(hours=3), "E01-ELEC-1", "E02-ELEC-1")
    run_cycle(settings, registry, config, T0)
    assert _paths(sink) == ["/e02"]
    run_cycle(settings, registry, config, T0 + timedelta(minutes=59))
    assert _paths(sink) == ["/e02"]
    run_cycle(settings, registry, config, T0 + timedelta(minutes=61))
    assert _paths(sink) == ["/e02", "/e01"]  # the silence ended: E01's alert is new


def test_offline_inhibits_completeness_on_the_same_meter(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    doc["rules"] = [
        {"id": "offline", "kind": "offline", "meters": ["E01-ELEC-1", "E01-GAS-1"],
         "intervals": 4},
        {"id": "complete", "kind": "completeness", "meters": ["E01-ELEC-1", "E01-GAS-1"]},
    ]
    doc["inhibit"] = [{"source": {"rule": "offline"}, "target": {"rule": "complete"},
                       "equal": ["meter"]}]
    config = parse_alerts(doc, "a", registry)
    day_end = T0.replace(hour=16)  # local midnight 2026-10-13
    now = day_end + timedelta(hours=2)
    # E01-GAS-1 reports but its day had a gap; E01-ELEC-1 stopped in the afternoon
    for meter, hours in (("E01-GAS-1", 24), ("E01-ELEC-1", 14)):
        put_usage(dsn, meter, [(day_end - timedelta(hours=24) + timedelta(minutes=15 * k), 1.0)
                               for k in range(hours * 4) if meter == "E01-ELEC-1" or k % 8])
    put_readings(dsn, "E01-GAS-1", [now - timedelta(minutes=15 * k) for k in range(3)])
    put_readings(dsn, "E01-ELEC-1", [day_end - timedelta(hours=10)])
    r = run_cycle(settings, registry, config, now)
    states = {(t.instance.rule_id, t.instance.subject): t.to_state for t in r.transitions}
    assert states == {("offline", "E01-ELEC-1"): "firing", ("complete", "E01-ELEC-1"): "firing",
                      ("complete", "E01-GAS-1"): "firing"}
    # grouped by rule: one message per rule to E01's manager; the inhibited alert is in
    # none of them
    told = sorted((a["labels"]["rule"], a["labels"]["meter"])
                  for r in sink.requests for a in r["json"]["alerts"])
    assert len(sink.requests) == 2
    assert told == [("complete", "E01-GAS-1"), ("offline", "E01-ELEC-1")]


def test_quiet_hours_defer_and_critical_bypasses(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["recipients"][0]["quiet_hours"] = {"start": "22:00", "end": "07:00"}
    doc["rules"][0]["overrides"] = [{"meter": "E02-ELEC-1", "severity": "critical"}]
    doc["recipients"][1]["quiet_hours"] = {"start": "22:00", "end": "07:00"}
    doc["routes"] = [{"to": "enterprise", "repeat_interval": "12h"}]
    config = parse_alerts(doc, "a", registry)
    night = T0.replace(hour=15)  # 23:00 in the park
    _hot(dsn, night + timedelta(hours=9), "E01-ELEC-1", "E02-ELEC-1", since=night)
    run_cycle(settings, registry, config, night)
    assert _paths(sink) == ["/e02"]  # critical bypasses E02's quiet hours
    run_cycle(settings, registry, config, night + timedelta(hours=7, minutes=59))
    assert _paths(sink) == ["/e02"]
    run_cycle(settings, registry, config, night + timedelta(hours=8))  # 07:00
    assert _paths(sink) == ["/e02", "/e01"]


def test_isolation_holds_even_when_the_file_check_is_bypassed(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": ["e01-manager", "park-officer"]}]  # rejected by alerts check
    config = AlertsConfig.model_validate(doc)
    _hot(dsn, T0, "E01-ELEC-1", "E02-ELEC-1")
    run_cycle(settings, registry, config, T0)
    got = {r["path"]: sorted(a["labels"]["enterprise"] for a in r["json"]["alerts"])
           for r in sink.requests}
    assert got == {"/e01": ["E01"], "/park": ["E01", "E02"]}


def test_a_resolve_in_quiet_hours_waits_for_the_morning(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["recipients"][0]["quiet_hours"] = {"start": "22:00", "end": "07:00"}
    doc["routes"] = [{"to": "enterprise", "repeat_interval": "1d"}]
    config = parse_alerts(doc, "a", registry)
    evening = T0.replace(hour=12)  # 20:00 in the park
    _hot(dsn, evening, "E01-ELEC-1", since=evening)
    run_cycle(settings, registry, config, evening)
    assert [r["json"]["status"] for r in sink.requests] == ["firing"]
    late = evening + timedelta(hours=3, minutes=30)  # 23:30: cleared
    put_usage(dsn, "E01-ELEC-1", [(ts, 1.0) for ts in slots(late, 1)])
    r = run_cycle(settings, registry, config, late)
    assert [t.to_state for t in r.transitions] == ["normal"]
    run_cycle(settings, registry, config, late + timedelta(hours=7))  # 06:30
    assert len(sink.requests) == 1
    run_cycle(settings, registry, config, late + timedelta(hours=7, minutes=30))  # 07:00
    assert [r["json"]["status"] for r in sink.requests] == ["firing", "resolved"]
