"""Loss upstream of ingest is visible (#11 point 2): a broker with the stock queue limit
drops most of a backlog; the meters' ``seq`` numbers show the holes as ``sequence_gap``
meter events with the missing range, and the broker's own drop counter ($SYS) reaches
/metrics. Real Mosquitto, real PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid

import psycopg

from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
from parkcarbon.ingest.usage.counters import Event
from parkcarbon.ingest.usage.derive import derive_committed
from parkcarbon.ingest.usage.sequence import sequence_gaps
from parkcarbon.registry import load_registry
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY, Broker, mqtt_publish

METER = ("E04", "E04-ELEC-1")


def test_sequence_gaps_pure() -> None:
    rows = [(0.0, 1), (1.0, 2), (2.0, 5), (3.0, 6), (4.0, 0), (5.0, 1), (6.0, 1), (7.0, 9)]
    gaps = sequence_gaps(rows)
    assert [(e.kind, e.ts_start.timestamp(), e.ts.timestamp(), e.detail) for e in gaps
            if isinstance(e, Event) and e.ts_start is not None] == [
        ("sequence_gap", 1.0, 2.0, {"seq_from": 3, "seq_to": 4, "missing": 2}),
        ("sequence_gap", 6.0, 7.0, {"seq_from": 2, "seq_to": 8, "missing": 7}),
    ]  # 6 -> 0 is a restart, 1 -> 1 a resend: not gaps


def test_stock_queue_limit_drops_show_as_sequence_gaps_and_broker_metric(
        migrated_dsn: str, broker: Broker) -> None:
    broker.stop()
    text = broker.conf.read_text()
    assert "max_queued_messages 0\n" in text
    # Mosquitto's defaults: 1,000 queued messages per client; $SYS every second here
    broker.conf.write_text(text.replace("max_queued_messages 0\n", "max_queued_messages 1000\n")
                           + "sys_interval 1\n")
    broker.start()
    registry = load_registry(EXAMPLE_REGISTRY)
    settings = Settings(database_url=migrated_dsn, mqtt_port=broker.port,
                        mqtt_username=broker.username, mqtt_password=broker.password,
                        metrics_port=None, mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}")
    service = IngestService(settings, registry)
    service.start()
    assert service.wait_subscribed(20)
    service.stop(timeout_seconds=10)  # the session now queues for ingest, at most 1,000

    n = 3000
    start = int(time.time()) - n
    topic = f"park/{METER[0]}/{METER[1]}"
    mqtt_publish(broker, [(topic, json.dumps({"ts": start + i, "value": float(i),
                                              "seq": i}).encode()) for i in range(n)])
    service = IngestService(settings, registry)
    service.start()
    try:
        assert service.wait_subscribed(20)
        assert flush_and_wait_idle(service, min_messages=500, timeout_seconds=30,
                                   quiet_seconds=1.0)
        deadline = time.monotonic() + 15
        while (service.stats().broker_dropped or 0) < n - service.stats().readings_stored:
            assert time.monotonic() < deadline, service.stats()
            time.sleep(0.2)
        stored = service.stats().readings_stored
        metrics = service.metrics_text()
        # the meter goes on: its next reading, live, shows where the numbers stopped
        mqtt_publish(broker, [(topic, json.dumps({"ts": start + n, "value": float(n),
                                                  "seq": n}).encode())])
        assert flush_and_wait_idle(service, min_messages=stored + 1, timeout_seconds=30)
    finally:
        service.stop(timeout_seconds=10)
    assert 500 <= stored < n  # the broker dropped the rest: that is the point
    dropped = [line for line in metrics.splitlines()
               if line.startswith("parkcarbon_ingest_broker_messages_dropped ")]
    assert len(dropped) == 1 and int(dropped[0].split()[1]) >= n - stored, metrics

    derive_committed(migrated_dsn, meter_ids=[METER[1]])
    with psycopg.connect(migrated_dsn) as conn:
        gaps = conn.execute(
            "SELECT ts_start, ts, detail FROM meter_events WHERE meter_id = %s AND kind = "
            "'sequence_gap' ORDER BY ts", (METER[1],)).fetchall()
        seqs = [r[0] for r in conn.execute(
            "SELECT seq FROM readings WHERE meter_id = %s ORDER BY ts", (METER[1],))]
    assert gaps, "no sequence_gap event"
    missing = sum(g[2]["missing"] for g in gaps)
    # every hole between the first and the last stored number is reported, exactly:
    # here everything the broker dropped
    assert seqs[0] == 0 and seqs[-1] == n
    assert missing == (n + 1) - len(seqs) == n - stored
    for ts_start, ts, detail in gaps:
        assert ts_start < ts and detail["seq_to"] >= detail["seq_from"]


def test_a_late_reading_that_fills_the_hole_removes_the_event(migrated_dsn: str) -> None:
    meter = METER[1]
    t0 = int(time.time()) - 3600
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute("INSERT INTO readings (meter_id, ts, value, seq) VALUES "
                     "(%s, to_timestamp(%s), 1, 1), (%s, to_timestamp(%s), 3, 3)",
                     (meter, t0, meter, t0 + 1800))
        conn.commit()
    derive_committed(migrated_dsn, meter_ids=[meter])
    query = ("SELECT detail FROM meter_events WHERE meter_id = %s AND kind = 'sequence_gap'")
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute(query, (meter,)).fetchall() == [
            ({"seq_from": 2, "seq_to": 2, "missing": 1},)]
        conn.execute("INSERT INTO readings (meter_id, ts, value, seq) VALUES "
                     "(%s, to_timestamp(%s), 2, 2)", (meter, t0 + 900))
        conn.commit()
    derive_committed(migrated_dsn, meter_ids=[meter])
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute(query, (meter,)).fetchall() == []
