"""What each rule kind measures, with one statement per rule (not one per meter), against
PostgreSQL: enterprise thresholds, baseline spike and drop, counter anomalies, dead
letters, ingest incidents, completeness per enterprise, carbon budget from the carbon package, and a
failing source as the error state of the same instances."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
from alerts_support import T0, put_usage, slots

from parkcarbon.alerts.dispatch import labels_of, snapshot
from parkcarbon.alerts.engine import evaluate
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.alerts.sources import Context
from parkcarbon.alerts.state import load_instances
from parkcarbon.alerts.templates import Renderer


def _run(settings, registry, doc, now):
    config = parse_alerts(doc, "a", registry)
    ctx = Context(registry=registry, now=now, tz=settings.tz, settings=settings)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        r = evaluate(conn, config, ctx)
        conn.commit()
    return {(t.instance.rule_id, t.instance.subject): (t.to_state, t.instance.value)
            for t in r.transitions}, r


def test_enterprise_threshold_sums_its_meters(settings, registry):
    dsn = settings.database_url.get_secret_value()
    put_usage(dsn, "E04-ELEC-1", [(ts, 300.0) for ts in slots(T0, 4)])
    put_usage(dsn, "E04-PV-1", [(ts, 100.0) for ts in slots(T0, 4)])
    put_usage(dsn, "E05-ELEC-1", [(ts, 100.0) for ts in slots(T0, 4)])
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "ent-power", "kind": "threshold", "subject": "enterprise",
         "carriers": ["electricity"], "window": "1h", "threshold": 1500}]}
    changes, r = _run(settings, registry, doc, T0 + timedelta(minutes=3))
    # E04: (300 + 100) kWh x 4 slots / 1 h = 1,600 kW; E05: 400 kW
    assert changes == {("ent-power", "E04"): ("firing", 1600.0)}
    assert r.subjects == 14


def test_baseline_spike_and_drop_against_the_same_weekday_and_hour(settings, registry):
    dsn = settings.database_url.get_secret_value()
    for w in range(1, 5):  # four earlier Mondays 09:00-10:00 local
        start = T0 - timedelta(weeks=w) - timedelta(hours=1)
        put_usage(dsn, "E06-ELEC-1", [(start + timedelta(minutes=15 * k), 100.0)
                                      for k in range(4)])
        put_usage(dsn, "E07-ELEC-1", [(start + timedelta(minutes=15 * k), 100.0)
                                      for k in range(4)])
    put_usage(dsn, "E06-ELEC-1", [(ts, 250.0) for ts in slots(T0, 4)])  # 2.5x
    put_usage(dsn, "E07-ELEC-1", [(ts, 10.0) for ts in slots(T0, 4)])  # 0.1x
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "spike", "kind": "baseline", "meters": ["E06-ELEC-1", "E07-ELEC-1"],
         "direction": "spike", "ratio": 2.0},
        {"id": "drop", "kind": "baseline", "meters": ["E06-ELEC-1", "E07-ELEC-1"],
         "direction": "drop", "ratio": 0.3}]}
    changes, _ = _run(settings, registry, doc, T0)
    assert changes == {("spike", "E06-ELEC-1"): ("firing", 2.5),
                       ("drop", "E07-ELEC-1"): ("firing", 0.1)}


def test_baseline_needs_every_week_complete(settings, registry):
    """Data for one earlier week of four (a park's first weeks) or a half-filled window
    is no baseline: weeks without data never count as zero usage (which turned normal
    usage into a spike in every enterprise of the demo)."""
    dsn = settings.database_url.get_secret_value()
    start = T0 - timedelta(weeks=1) - timedelta(hours=1)
    put_usage(dsn, "E06-ELEC-1", [(start + timedelta(minutes=15 * k), 100.0)
                                  for k in range(4)])
    put_usage(dsn, "E06-ELEC-1", [(ts, 150.0) for ts in slots(T0, 4)])  # 1.5x of week 1
    for w in range(1, 5):  # E07: four weeks, but one of them has 2 of 4 slots
        start = T0 - timedelta(weeks=w) - timedelta(hours=1)
        put_usage(dsn, "E07-ELEC-1", [(start + timedelta(minutes=15 * k), 100.0)
                                      for k in range(2 if w == 3 else 4)])
    put_usage(dsn, "E07-ELEC-1", [(ts, 150.0) for ts in slots(T0, 4)])
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "spike", "kind": "baseline", "meters": ["E06-ELEC-1", "E07-ELEC-1"],
         "direction": "spike", "ratio": 1.2}]}
    changes, _ = _run(settings, registry, doc, T0)
    assert changes == {}


def test_counter_anomalies_and_dead_letters(settings, registry):
    dsn = settings.database_url.get_secret_value()
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO meter_events (meter_id, kind, ts) VALUES "
                     "('E03-GAS-1', 'reset', %s), ('E03-GAS-1', 'gap', %s), "
                     "('E08-ELEC-1', 'absurd', %s)",
                     (T0 - timedelta(hours=2), T0 - timedelta(hours=2),
                      T0 - timedelta(days=3)))
        for n in range(5):
            conn.execute("INSERT INTO dead_letters (received_at, topic, payload, reason_code, "
                         "reason, enterprise_id) VALUES (%s, 'park/E09/x', 'x', 'bad_json', "
                         "'not JSON', 'E09')", (T0 - timedelta(minutes=5 * n),))
        conn.execute("INSERT INTO dead_letters (received_at, topic, payload, reason_code, "
                     "reason, enterprise_id) VALUES (%s, 'park/E10/x', 'x', 'bad_json', "
                     "'not JSON', 'E10')", (T0,))
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "counter", "kind": "counter_anomaly"},
        {"id": "rejected", "kind": "dead_letters", "threshold": 3}]}
    changes, _ = _run(settings, registry, doc, T0)
    assert changes == {("counter", "E03-GAS-1"): ("firing", 1.0),
                       ("rejected", "E09"): ("firing", 5.0)}
    # a day later the reset is out of the window and the rejects stopped
    changes, _ = _run(settings, registry, doc, T0 + timedelta(days=1))
    assert changes == {("counter", "E03-GAS-1"): ("normal", 0.0),
                       ("rejected", "E09"): ("normal", 0.0)}


def test_ingest_incidents_within_the_window_fire_per_client_id(settings, registry):
    dsn = settings.database_url.get_secret_value()
    lost_from, lost_to = T0 - timedelta(minutes=40), T0 - timedelta(minutes=10)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO ingest_sessions (broker, client_id) VALUES "
                     "('127.0.0.1:1883', 'ingest-a'), ('127.0.0.1:1883', 'ingest-b'), "
                     "('127.0.0.1:1883', 'ingest-c')")
        conn.execute(
            "INSERT INTO ingest_incidents (at, kind, broker, client_id, window_start, "
            "window_end, detail) VALUES "
            "(%s, 'session_lost', '127.0.0.1:1883', 'ingest-a', %s, %s, 'lost'), "
            "(%s, 'session_lost', '127.0.0.1:1883', 'ingest-b', %s, %s, 'lost long ago'), "
            "(%s, 'session_taken_over', '127.0.0.1:1883', 'ingest-c', NULL, NULL, 'taken')",
            (lost_to, lost_from, lost_to,
             T0 - timedelta(hours=2), T0 - timedelta(hours=3), T0 - timedelta(hours=2),
             T0 - timedelta(minutes=5)))
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "lost", "kind": "ingest_incident", "incidents": ["session_lost"],
         "severity": "critical"},
        {"id": "taken", "kind": "ingest_incident", "incidents": ["session_taken_over"]}]}
    changes, r = _run(settings, registry, doc, T0)
    # ingest-b's loss is older than the 1h window; ingest-c's incident is the other kind
    assert changes == {("lost", "ingest-a"): ("firing", 1.0),
                       ("taken", "ingest-c"): ("firing", 1.0)}
    assert r.subjects == 6
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT rule_id, enterprise_id, meter_id, severity, detail "
                            "FROM alert_instances ORDER BY rule_id").fetchall()
    (_, ent, meter, severity, lost), (_, _, _, _, taken) = rows
    assert (ent, meter, severity) == (None, None, "critical")  # park-level
    assert (lost["incident"], lost["client_id"], lost["broker"]) == (
        "session_lost", "ingest-a", "127.0.0.1:1883")
    assert datetime.fromisoformat(lost["window_start"]) == lost_from
    assert datetime.fromisoformat(lost["window_end"]) == lost_to
    assert (taken["incident"], taken["client_id"], taken["window_start"]) == (
        "session_taken_over", "ingest-c", None)  # handed over, not lost
    # the message line names the incident, the client id and the loss window
    config = parse_alerts(doc, "a", registry)
    with psycopg.connect(dsn) as conn:
        inst = load_instances(conn, ["lost"])[("lost", "ingest-a")]
    alert = {**snapshot(config, registry, inst, labels_of(config, inst), None),
             "status": "firing"}
    line = Renderer(settings.tz).render({"title": "t", "alerts": [alert]}, "text",
                                        language="zh")
    local = settings.tz
    assert (f"会话丢失：客户端 ingest-a（代理 127.0.0.1:1883），"
            f"{lost_from.astimezone(local):%Y-%m-%d %H:%M} 至 "
            f"{lost_to.astimezone(local):%Y-%m-%d %H:%M} 发布的读数可能丢失") in line
    # an hour after the incident it is out of the window: the alert resolves
    changes, _ = _run(settings, registry, doc, lost_to + timedelta(hours=1, minutes=1))
    assert changes == {("lost", "ingest-a"): ("normal", 0.0)}


def test_enterprise_completeness_over_its_meters(settings, registry):
    dsn = settings.database_url.get_secret_value()
    day0 = T0.replace(hour=16) - timedelta(days=1)  # local midnight 2026-10-12
    e11 = [m.id for m in registry.meters if m.enterprise == "E11"]
    for n, m in enumerate(e11):
        put_usage(dsn, m, [(day0 + timedelta(minutes=15 * k), 1.0) for k in range(96)],
                  estimated=False)
        if n == 0:  # one meter's afternoon was estimated across a gap
            put_usage(dsn, m, [(day0 + timedelta(minutes=15 * k), 1.0) for k in range(36, 96)],
                      estimated=True)
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "ent-complete", "kind": "completeness", "subject": "enterprise",
         "enterprises": ["E11"], "min_share": 0.9}]}
    changes, _ = _run(settings, registry, doc, day0 + timedelta(days=1, hours=1))
    assert 2 <= len(e11) <= 5
    share = (96 * len(e11) - 60) / (96 * len(e11))  # below 0.9 for up to 5 meters
    assert changes == {("ent-complete", "E11"): ("firing", share)}


def test_carbon_budget_month_to_date_from_the_carbon_package(settings, registry):
    from parkcarbon.carbon.accounting import emissions, refresh

    dsn = settings.database_url.get_secret_value()
    first = T0.replace(day=1, hour=16) - timedelta(days=1)  # local 2026-10-01 00:00
    put_usage(dsn, "E01-ELEC-1", [(first + timedelta(minutes=15 * k), 1000.0)
                                  for k in range(96 * 11)])  # 1 MWh per slot, 11 days
    with psycopg.connect(dsn) as conn:
        refresh(conn, settings)
        conn.commit()
        df = emissions(conn, period="2026-10", enterprise="E01")
        mtd = float(df["scope12_co2_t"].sum())
        conn.execute("INSERT INTO carbon_budgets (month, enterprise_id, cap_co2_t, budget_co2_t, "
                     "basis, profile, cap_source) VALUES (%s, 'E01', 10000, %s, 'location', "
                     "'days', 'annual')", (date(2026, 10, 1), mtd * 31 / 11 / 1.5))
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "mtd", "kind": "carbon_budget", "metric": "mtd_vs_budget_pct",
         "threshold": 110, "enterprises": ["E01", "E02"]}]}
    changes, _ = _run(settings, registry, doc, T0)  # 2026-10-12 10:00: data through 10-11
    ((key, (state, value)),) = changes.items()
    assert key == ("mtd", "E01") and state == "firing"
    assert abs(value - 150.0) < 0.01


def test_a_failing_source_is_the_error_state_of_the_same_instances(settings, registry):
    dsn = settings.database_url.get_secret_value()
    put_usage(dsn, "E01-ELEC-1", [(ts, 500.0) for ts in slots(T0, 1)])
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "demand", "kind": "threshold", "meters": ["E01-ELEC-1"], "threshold": 1000},
        {"id": "offline", "kind": "offline", "meters": ["E01-ELEC-1"]}]}
    changes, _ = _run(settings, registry, doc, T0)
    assert changes[("demand", "E01-ELEC-1")] == ("firing", 2000.0)
    with psycopg.connect(dsn) as conn:
        conn.execute("ALTER TABLE usage RENAME TO usage_away")
    try:
        changes, r = _run(settings, registry, doc, T0 + timedelta(minutes=1))
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute("ALTER TABLE usage_away RENAME TO usage")
    assert changes[("demand", "E01-ELEC-1")][0] == "error"
    assert "UndefinedTable" in r.errors["demand"] and "offline" not in r.errors
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT rule_id, subject, state, episode FROM alert_instances "
                            "WHERE rule_id = 'demand'").fetchall()
    assert rows == [("demand", "E01-ELEC-1", "error", 1)]  # the same instance, same episode
    changes, _ = _run(settings, registry, doc, T0 + timedelta(minutes=2))
    assert changes[("demand", "E01-ELEC-1")][0] == "firing"


def test_carbon_budget_forecast_and_runout_from_targets_status(settings, registry, tmp_path):
    import yaml

    from parkcarbon.carbon.accounting import refresh

    dsn = settings.database_url.get_secret_value()
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({
        "basis": "location", "budget_profile": "days",
        "enterprises": [{"id": "E01", "annual": {2026: {"cap_co2_t": 2000}}},
                        {"id": "E02", "annual": {2026: {"cap_co2_t": 10_000_000}}}]}))
    s = settings.model_copy(update={"targets_file": targets})
    first = T0.replace(day=1, hour=16) - timedelta(days=1)  # local 2026-10-01 00:00
    for meter in ("E01-ELEC-1", "E02-ELEC-1"):
        put_usage(dsn, meter, [(first + timedelta(minutes=15 * k), 1000.0)
                               for k in range(96 * 11)])
    with psycopg.connect(dsn) as conn:
        refresh(conn, s)
        conn.commit()
    doc = {"defaults": {"for": 0}, "rules": [
        {"id": "forecast", "kind": "carbon_budget", "metric": "forecast_vs_cap_pct",
         "threshold": 100, "enterprises": ["E01", "E02"]},
        {"id": "runout", "kind": "carbon_budget", "metric": "runout_days", "op": "below",
         "threshold": 3650, "enterprises": ["E01", "E02"]}]}
    changes, r = _run(s, registry, doc, T0)
    assert not r.errors, r.errors
    # E01: ~1 MWh every 15 min for 11 days is far above a 2,000 t year; E02 is not
    assert {k: v[0] for k, v in changes.items()} == {("forecast", "E01"): "firing",
                                                    ("runout", "E01"): "firing"}
    assert changes[("forecast", "E01")][1] > 100
