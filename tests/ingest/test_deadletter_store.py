"""A conflicting reading is recorded, not dropped (#10 point 8); dead letters keep a
bounded prefix, are purged on retention and show the table's size (#11 point 9); the
`deadletters list` columns hold with long topics (#10 point 9). Real PostgreSQL and,
end to end, a real Mosquitto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from parkcarbon.ingest.deadletters import list_dead_letters, purge_dead_letters, table_bytes
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
from parkcarbon.registry import Registry, load_registry
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY, ROOT, Broker, free_port, mqtt_publish


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


def ingest_settings(dsn: str, broker: Broker, **more: object) -> Settings:
    values: dict[str, object] = {
        "database_url": dsn, "mqtt_port": broker.port, "mqtt_username": broker.username,
        "mqtt_password": broker.password, "metrics_port": free_port(),
        "mqtt_client_id": f"ingest-{uuid.uuid4().hex[:8]}"}
    values.update(more)
    return Settings(**values)  # type: ignore[arg-type]


def test_conflicting_reading_is_a_dead_letter_and_a_metric(
        migrated_dsn: str, broker: Broker, registry: Registry) -> None:
    ts = int(time.time()) - 60
    topic = "park/E09/E09-DIESEL-1"  # reports kg, stored in t: the reason names the unit
    service = IngestService(ingest_settings(migrated_dsn, broker), registry)
    service.start()
    try:
        assert service.wait_subscribed(20)
        mqtt_publish(broker, [(topic, json.dumps({"ts": ts, "value": 1500.0}).encode())])
        assert flush_and_wait_idle(service, min_messages=1, timeout_seconds=20)
        mqtt_publish(broker, [
            (topic, json.dumps({"ts": ts, "value": 1500.0}).encode()),  # a plain resend
            (topic, json.dumps({"ts": ts, "value": 1700.0, "seq": 7}).encode()),  # conflict
        ])
        assert flush_and_wait_idle(service, min_messages=3, timeout_seconds=20)
        stats = service.stats()
        metrics = service.metrics_text()
    finally:
        service.stop(timeout_seconds=10)
    counted = (stats.readings_stored, stats.readings_duplicate, stats.readings_conflicting)
    assert counted == (1, 1, 1)
    assert "parkcarbon_ingest_readings_conflicting_total 1" in metrics
    assert 'parkcarbon_ingest_dead_letters_total{reason="conflicting_value"} 1' in metrics
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT value FROM readings").fetchall() == [(1.5,)]  # first wins
        (dl,) = list_dead_letters(conn)
    assert (dl.reason_code, dl.topic, dl.meter_id, dl.enterprise_id) == (
        "conflicting_value", topic, "E09-DIESEL-1", "E09")
    assert "new value 1.7 differs from the stored value 1.5 t" in dl.reason
    assert dl.received_at is not None
    body = json.loads(dl.payload_preview)
    assert (body["value"], body["unit"], body["seq"]) == (1.7, "t", 7)
    # replaying it stores nothing new and does not record the conflict again
    with psycopg.connect(migrated_dsn) as conn:
        from parkcarbon.ingest.deadletters import replay_dead_letters
        (outcome,) = replay_dead_letters(conn, Parser.from_settings(registry, Settings()))
        assert (outcome.replayed, outcome.stored, outcome.duplicates) == (True, 0, 1)
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)


def test_dead_letters_keep_a_prefix_and_the_size(
        migrated_dsn: str, broker: Broker, registry: Registry) -> None:
    """1,000 rejected 250 KB messages added 250 MB; now each keeps 16 KiB by default."""
    big = b'{"ts": 1, "value": 1, "pad": "' + b"x" * 200_000 + b'"}'
    settings = ingest_settings(migrated_dsn, broker, dead_letter_keep_bytes=1024)
    service = IngestService(settings, registry)
    service.start()
    try:
        assert service.wait_subscribed(20)
        mqtt_publish(broker, [("park/E01/E01-ELEC-9", big)] * 20)
        assert flush_and_wait_idle(service, min_messages=20, timeout_seconds=30)
    finally:
        service.stop(timeout_seconds=10)
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT count(*), max(length(payload)), min(payload_bytes) "
                            "FROM dead_letters").fetchone() == (20, 1024, len(big))
        letters = list_dead_letters(conn)
        assert {d.payload_bytes for d in letters} == {len(big)}
        assert table_bytes(conn) < 2_000_000  # 20 x 200 KB would be 4 MB
        # a cut payload cannot be replayed: it says so and stays open
        from parkcarbon.ingest.deadletters import replay_dead_letters
        outcomes = replay_dead_letters(conn, Parser.from_settings(registry, settings), limit=1)
        assert outcomes[0].replayed is False
        assert outcomes[0].result.startswith(
            f"not replayable: only the first 1024 of {len(big)} payload bytes were kept")


def test_purge_removes_replayed_and_old_dead_letters(migrated_dsn: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute("""
            INSERT INTO dead_letters (received_at, topic, payload, reason_code, reason,
                                      replayed_at)
            VALUES (now() - interval '100 days', 'park/a/b', 'x', 'bad_json', 'old', NULL),
                   (now() - interval '10 days', 'park/a/b', 'x', 'bad_json', 'new', NULL),
                   (now() - interval '95 days', 'park/a/b', 'x', 'bad_json', 'done',
                    now() - interval '91 days'),
                   (now() - interval '5 days', 'park/a/b', 'x', 'bad_json', 'just done',
                    now() - interval '1 day')""")
        conn.commit()
        assert purge_dead_letters(conn, retention_days=90) == 2
        assert [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")] == [
            "new", "just done"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env["PARKCARBON_DATABASE_URL"] = migrated_dsn
    proc = subprocess.run([sys.executable, "-m", "parkcarbon", "deadletters", "purge",
                           "--older-than-days", "3", "--format", "json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["purged"], result["retention_days"]) == (2, 3)
    assert result["table_bytes"] > 0


def test_purge_job_is_scheduled() -> None:
    from parkcarbon.runtime.schedule import collect_jobs

    jobs = {j.name: j for j in collect_jobs(Settings())}
    assert jobs["purge_dead_letters"].cron == {"hour": "3", "minute": "17"}


def test_list_columns_hold_with_long_topics(migrated_dsn: str) -> None:
    long_topic = "park/E01/" + "very-long-meter-name-" * 5
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute("""INSERT INTO dead_letters (topic, payload, reason_code, reason)
                        VALUES (%s, 'x', 'unknown_meter', 'meter is not in the registry'),
                               ('park/E01/E01-ELEC-1', 'x', 'bad_json', 'payload is not JSON')
                     """, (long_topic,))
        conn.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env["PARKCARBON_DATABASE_URL"] = migrated_dsn
    proc = subprocess.run([sys.executable, "-m", "parkcarbon", "deadletters", "list"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[1:3]
    # the reason column starts at the same place on both lines
    assert first.index("payload is not JSON") == second.index("meter is not in the registry")
    assert "…" in second and len(second) < len(long_topic) + 80
