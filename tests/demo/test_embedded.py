"""The demo's fallback services, started for real: embedded PostgreSQL, mosquitto, amqtt."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from parkcarbon import mqtt as pcmqtt
from parkcarbon.demo.embedded import EmbeddedPostgres, port_open
from parkcarbon.demo.local_broker import LocalBroker
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY, free_port


def test_embedded_postgres_start_migrate_query_stop_restart(data_dir: Path) -> None:
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    pg = EmbeddedPostgres(data_dir, database="demo", port=free_port())
    dsn = pg.start()
    try:
        assert pg.started_here
        assert dsn.startswith("postgresql://postgres@127.0.0.1:")
        result = migrate(dsn, mode="auto", timezone="Asia/Shanghai")
        assert result.mode == "plain"  # the wheel has no TimescaleDB
        with psycopg.connect(dsn) as conn:
            sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
            version = conn.execute("SHOW server_version").fetchone()
            assert version is not None and version[0].startswith("18.")
        if os.geteuid() == 0:
            owner = (pg.pgdata / "PG_VERSION").stat().st_uid
            assert owner != 0, "PostgreSQL must not run as root"
    finally:
        pg.stop()
    assert not pg.started_here
    assert not port_open("127.0.0.1", pg.port or 0)
    assert not (pg.pgdata / "postmaster.pid").exists()

    # The data stays in the folder: a second start finds the schema and the registry.
    again = EmbeddedPostgres(data_dir, database="demo", port=free_port())
    dsn = again.start()
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM meters").fetchone()
            assert row == (52,)
    finally:
        again.stop()


def test_embedded_postgres_reuses_a_running_server(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir, port=free_port())
    first.start()
    try:
        second = EmbeddedPostgres(data_dir)
        assert second.start() == first.dsn
        assert not second.started_here
        second.stop()  # not ours to stop
        assert port_open("127.0.0.1", first.port or 0)
    finally:
        first.stop()
    assert not port_open("127.0.0.1", first.port or 0)


def _roundtrip(broker: LocalBroker) -> list[tuple[str, bytes, int]]:
    """Subscribe QoS 1, publish QoS 1, return what the subscriber got."""
    assert broker.port is not None
    settings = Settings(mqtt_host="127.0.0.1", mqtt_port=broker.port,
                        mqtt_protocol=broker.protocol)  # type: ignore[arg-type]
    got: list[tuple[str, bytes, int]] = []
    received = threading.Event()
    sub = pcmqtt.connect(settings, client_id="t-sub")
    sub.on_message = lambda c, u, m: (got.append((m.topic, m.payload, m.qos)), received.set())
    try:
        pcmqtt.subscribe_and_wait(sub, "park/+/+")
        pub = pcmqtt.connect(settings, client_id="t-pub")
        try:
            info = pub.publish("park/E01/E01-EL-1", b'{"ts": 1, "value": 2}', qos=1)
            info.wait_for_publish(10)
            assert info.is_published()
            assert received.wait(10)
        finally:
            pub.disconnect()
            pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()
    return got


@pytest.mark.parametrize("kind", ["amqtt", "mosquitto"])
def test_local_broker_qos1_roundtrip_and_clean_stop(tmp_path: Path, kind: str) -> None:
    if kind == "mosquitto" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto not installed")
    broker = LocalBroker(tmp_path, kind=kind)  # type: ignore[arg-type]
    broker.start()
    try:
        assert broker.port is not None and port_open("127.0.0.1", broker.port)
        got = _roundtrip(broker)
        assert got == [("park/E01/E01-EL-1", b'{"ts": 1, "value": 2}', 1)]
    finally:
        process = broker.process
        broker.stop()
    assert process is not None and process.returncode is not None
    assert broker.process is None
    assert not port_open("127.0.0.1", broker.port)


def test_auto_broker_prefers_mosquitto(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path)
    broker.start()
    try:
        expected = "mosquitto" if shutil.which("mosquitto") else "amqtt"
        assert broker.kind == expected
        assert broker.protocol == ("5" if expected == "mosquitto" else "3.1.1")
    finally:
        broker.stop()
