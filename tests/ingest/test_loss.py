"""No reading lost or counted twice: SIGKILL of ingest, and a PostgreSQL crash, on
Mosquitto and on RabbitMQ's MQTT plugin (window of ten, MQTT 3.1.1: ``any_broker``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from parkcarbon.db import connect
from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
from parkcarbon.registry import load_registry
from parkcarbon.schema import migrate
from parkcarbon.settings import Settings
from parkcarbon.sync import sync_registry
from support import EXAMPLE_REGISTRY, PrivatePostgres, mqtt_publish

PARKCARBON = Path(sys.executable).with_name("parkcarbon")


def stream(n: int) -> list[tuple[str, bytes]]:
    """n readings spread over every meter of the example registry, distinct (meter, ts)."""
    meters = load_registry(EXAMPLE_REGISTRY).meters
    start = int(time.time()) - n  # one second apart per meter: all within the horizon
    out = []
    for i in range(n):
        m = meters[i % len(meters)]
        body = {"ts": start + i // len(meters), "value": float(i), "seq": i}
        out.append((f"park/{m.enterprise}/{m.id}", json.dumps(body).encode()))
    return out


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]


def check_exactly_once(dsn: str, n: int) -> None:
    with psycopg.connect(dsn) as conn:
        # value = seq, converted: the diesel meter reports kg, stored in t
        got = conn.execute("SELECT count(*), count(DISTINCT seq), sum(seq), min(seq), max(seq) "
                           "FROM readings WHERE value = seq OR (meter_id = 'E09-DIESEL-1' "
                           "AND abs(value * 1000 - seq) < 1e-6)").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert got == (n, n, n * (n - 1) // 2, 0, n - 1)
    assert dead == (0,)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    migrated_dsn: str, any_broker: Any, tmp_path: Path
) -> None:
    broker = any_broker
    n = 20_000
    env = {**os.environ,
           "PARKCARBON_DATABASE_URL": migrated_dsn,
           "PARKCARBON_REGISTRY_FILE": str(EXAMPLE_REGISTRY),
           "PARKCARBON_MQTT_PORT": str(broker.port),
           "PARKCARBON_MQTT_USERNAME": broker.username,
           "PARKCARBON_MQTT_PASSWORD": broker.password,
           "PARKCARBON_MQTT_PROTOCOL": broker.protocol,
           "PARKCARBON_MQTT_CLIENT_ID": "ingest-sigkill",
           "PARKCARBON_METRICS_PORT": "0"}

    def launch(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / name
        with log.open("wb") as fh:
            proc = subprocess.Popen([str(PARKCARBON), "ingest"], env=env, stdout=fh,
                                    stderr=subprocess.STDOUT)
        # a fresh interpreter, the start-up checks, then the SUBACK: ~5 s on a busy machine
        wait_for(lambda: "subscribed to" in log.read_text(), 45, "ingest to subscribe")
        return proc, log

    first, _ = launch("first.log")
    # Freeze ingest while the 20,000 readings are published, so that at the kill there
    # is for certain a backlog and a full in-flight window of unacknowledged messages,
    # whatever the machine's load (a racing publisher could let ingest keep up).
    first.send_signal(signal.SIGSTOP)
    try:
        mqtt_publish(broker, stream(n))
    finally:
        first.send_signal(signal.SIGCONT)
    wait_for(lambda: count(migrated_dsn) >= 2_000, 60, "the first rows")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    at_kill = count(migrated_dsn)
    assert 2_000 <= at_kill < n, "the kill did not land mid-stream"
    second, log = launch("second.log")
    try:
        wait_for(lambda: count(migrated_dsn) >= n, 90, "every reading")
        time.sleep(0.5)  # redeliveries still in flight must not add rows
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    check_exactly_once(migrated_dsn, n)
    text = log.read_text()
    assert "ingest stopped" in text
    # the messages in flight at the kill came back flagged as redeliveries
    redeliveries = re.findall(r"(\d+) redeliveries", text)
    assert redeliveries and int(redeliveries[-1]) > 0


def test_postgresql_crash_during_ingest_loses_nothing(any_broker: Any) -> None:
    broker = any_broker
    n = 6_000
    pg = PrivatePostgres()
    try:
        pg.start()
        migrate(pg.dsn, mode="plain", timezone="Asia/Shanghai", create_database=True)
        registry = load_registry(EXAMPLE_REGISTRY)
        with connect(pg.dsn) as conn:
            sync_registry(conn, registry)
        settings = Settings(database_url=pg.dsn, mqtt_port=broker.port,  # type: ignore[arg-type]
                            mqtt_username=broker.username, mqtt_password=broker.password,
                            mqtt_protocol=broker.protocol, mqtt_client_id="ingest-pgcrash",
                            metrics_port=None)
        service = IngestService(settings, registry)
        service.start()
        try:
            assert service.wait_subscribed(10)
            publisher = threading.Thread(target=mqtt_publish, args=(broker, stream(n)))
            publisher.start()
            wait_for(lambda: service.stats().readings_stored >= 1_000, 30, "the first rows")
            pg.stop("immediate")
            time.sleep(1.5)
            assert not service.healthy()
            pg.start()
            publisher.join(60)
            assert flush_and_wait_idle(service, min_messages=n, timeout_seconds=60)
            st = service.stats()
        finally:
            service.stop(timeout_seconds=10)
        assert st.db_errors >= 1
        assert st.messages == n
        # a commit the crash interrupted after it landed is retried: counted as duplicates
        assert st.readings_stored + st.readings_duplicate == n
        check_exactly_once(pg.dsn, n)
    finally:
        pg.cleanup()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
