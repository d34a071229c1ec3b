"""A real Mosquitto started with the files `parkcarbon mqtt credentials` generates:
accounts, ACLs, anonymous refused, TLS with a test CA made here with openssl."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from parkcarbon.errors import BrokerAuthError, BrokerError
from parkcarbon.mqtt import connect, subscribe_and_wait
from parkcarbon.registry import load_registry
from parkcarbon.security import roles
from parkcarbon.security.broker import generate
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY, ROOT, free_port, wait_port

from .conftest import SecuredDb

PREFIX = "park"
ENTERPRISES = ["E01", "E02"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN={name}", cwd=directory)


def make_server_cert(directory: Path, ca: str) -> None:
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
             cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
             cwd=directory)


@dataclass
class SecureBroker:
    out: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes]

    def password(self, account: str) -> str:
        return roles.read_secret(self.out / "secrets" / f"{account}.password")

    def settings(self, account: str | None, **more: Any) -> Settings:
        values: dict[str, Any] = {"mqtt_host": "127.0.0.1", "mqtt_port": self.port,
                                  "metrics_port": None, "topic_prefix": PREFIX}
        if account is not None:
            values.update(mqtt_username=account, mqtt_password=self.password(account))
        values.update(more)
        return Settings(**values)

    def log(self) -> str:
        return (self.out / "mosquitto.log").read_text(errors="replace")


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    if shutil.which("mosquitto") is None or shutil.which("openssl") is None:
        pytest.exit("mosquitto and openssl are needed (apt-get install mosquitto openssl)", 3)
    out = tmp_path / "broker"
    generate(out, topic_prefix=PREFIX, enterprise_ids=ENTERPRISES,
             project_conf=ROOT / "config/mosquitto/mosquitto.conf",
             tls_conf=ROOT / "config/mosquitto/tls.conf", broker_dir=str(out))
    certs = out / "certs"
    certs.mkdir()
    make_ca(certs, "ca")
    make_server_cert(certs, "ca")
    port, tls_port = free_port(), free_port()
    lines = []
    for line in (out / "mosquitto.conf").read_text().splitlines():
        if line == "listener 1883":
            line = f"listener {port} 127.0.0.1"
        elif line == "listener 8883":
            line = f"listener {tls_port} 127.0.0.1"
        elif line.startswith("persistence_location"):
            (out / "data").mkdir()
            line = f"persistence_location {out}/data/"
        lines.append(line)
    if os.geteuid() == 0:
        lines.append("user root")  # as tests/support does: the temp folder is private
    conf = out / "test.conf"
    conf.write_text("\n".join(lines) + "\n")
    with (out / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        wait_port(tls_port)
        yield SecureBroker(out=out, port=port, tls_port=tls_port, process=process)
    finally:
        process.terminate()
        process.wait(timeout=15)


class Collector:
    """A subscriber that keeps every message it receives."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = connect(settings, client_id=f"collect-{uuid.uuid4().hex[:6]}")
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        subscribe_and_wait(self.client, topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publish_v5(settings: Settings, topic: str, payload: bytes) -> int:
    """Publish QoS 1 with MQTT 5 and return the PUBACK reason code."""
    client = connect(settings, client_id=f"pub-{uuid.uuid4().hex[:6]}", protocol="5")
    codes: list[int] = []
    done = threading.Event()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.publish(topic, payload, qos=1)
    assert done.wait(10), "no PUBACK"
    client.disconnect()
    client.loop_stop()
    return codes[0]


def _publish(settings: Settings, topic: str, payload: bytes, protocol: str) -> None:
    client = connect(settings, client_id=f"pub-{uuid.uuid4().hex[:6]}", protocol=protocol)
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def _reading(value: float) -> bytes:
    return json.dumps({"ts": time.time() - 60, "value": value}).encode()


def test_generated_files_are_private_and_mosquitto_passwd_reads_them(
        secure_broker: SecureBroker) -> None:
    out = secure_broker.out
    for name in ("passwd", "acl"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "secrets").stat().st_mode) == 0o700
    # mosquitto_passwd parses the file and keeps our hashes when it changes another line
    copy = out / "passwd.copy"
    shutil.copy(out / "passwd", copy)
    subprocess.run(["mosquitto_passwd", "-b", str(copy), "extra", "x"], check=True,
                   capture_output=True)
    lines = copy.read_text().splitlines()
    assert {line.split(":")[0] for line in lines} == {"ingest", "service", *ENTERPRISES,
                                                       "extra"}
    original = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert all(original[u] == h for u, h in (line.split(":", 1) for line in lines)
               if u != "extra")
    # no password is written anywhere but the secrets
    for account in ("ingest", "E01"):
        secret = secure_broker.password(account)
        for name in ("passwd", "acl", "mosquitto.conf"):
            assert secret not in (out / name).read_text()


def test_anonymous_and_wrong_passwords_are_refused(secure_broker: SecureBroker) -> None:
    with pytest.raises(BrokerAuthError):
        connect(secure_broker.settings(None), client_id="anon", protocol="5")
    with pytest.raises(BrokerAuthError):
        connect(secure_broker.settings(None), client_id="anon311", protocol="3.1.1")
    wrong = secure_broker.settings("E01", mqtt_password="not-the-password")
    with pytest.raises(BrokerAuthError):
        connect(wrong, client_id="wrong", protocol="5")
    client = connect(secure_broker.settings("E01"), client_id="right", protocol="5")
    client.disconnect()
    client.loop_stop()


def test_enterprise_cannot_publish_into_another_enterprise(
        secure_broker: SecureBroker) -> None:
    ingest = Collector(secure_broker.settings("ingest"), f"{PREFIX}/+/+")
    try:
        e1 = secure_broker.settings("E01")
        assert _publish_v5(e1, f"{PREFIX}/E02/E02-ELEC-1", _reading(1)) == 135  # not authorized
        assert _publish_v5(e1, f"{PREFIX}/E01/E01-ELEC-1", _reading(2)) == 0
        _publish(e1, f"{PREFIX}/E02/E02-GAS-1", _reading(3), "3.1.1")
        _publish(e1, f"{PREFIX}/alerts/E01", b"forged alert", "3.1.1")
        _publish(e1, f"{PREFIX}/E01/E01-GAS-1", _reading(4), "3.1.1")
        deadline = time.monotonic() + 5
        while len(ingest.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # anything else in flight would have arrived by now
    finally:
        ingest.close()
    assert sorted(t for t, _ in ingest.messages) == [f"{PREFIX}/E01/E01-ELEC-1",
                                                     f"{PREFIX}/E01/E01-GAS-1"]


class Eavesdropper:
    """Subscribes to a topic it should not read; keeps anything delivered. The broker may
    refuse the SUBACK (then ``refused``) or grant it and deliver nothing."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.refused = False
        self.messages: list[tuple[str, bytes]] = []
        self.client = connect(settings, client_id=f"spy-{uuid.uuid4().hex[:6]}")
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        try:
            subscribe_and_wait(self.client, topic)
        except BrokerError:
            self.refused = True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_alerts_reach_only_their_enterprise(secure_broker: SecureBroker) -> None:
    e1 = secure_broker.settings("E01")
    spies = [Eavesdropper(e1, f"{PREFIX}/alerts/E02"), Eavesdropper(e1, f"{PREFIX}/alerts/+"),
             Eavesdropper(e1, f"{PREFIX}/+/+"), Eavesdropper(e1, "#")]
    mine = Collector(e1, f"{PREFIX}/alerts/E01")
    try:
        service = secure_broker.settings("service")
        assert _publish_v5(service, f"{PREFIX}/alerts/E01", b"alert for E01") == 0
        assert _publish_v5(service, f"{PREFIX}/alerts/E02", b"alert for E02") == 0
        assert _publish_v5(service, f"{PREFIX}/E01/E01-ELEC-1", _reading(5)) == 135
        assert _publish_v5(secure_broker.settings("E02"), f"{PREFIX}/E02/E02-ELEC-1",
                           _reading(6)) == 0
        deadline = time.monotonic() + 5
        while not mine.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        mine.close()
        for spy in spies:
            spy.close()
    assert mine.messages == [(f"{PREFIX}/alerts/E01", b"alert for E01")]
    for spy in spies:
        assert spy.messages in ([], [(f"{PREFIX}/alerts/E01", b"alert for E01")]), spy.messages
    assert spies[0].messages == []


def test_tls_with_the_test_ca_and_a_wrong_ca(secure_broker: SecureBroker,
                                             tmp_path: Path) -> None:
    certs = secure_broker.out / "certs"
    good = secure_broker.settings("E01", mqtt_port=secure_broker.tls_port, mqtt_tls=True,
                                  mqtt_ca_file=certs / "ca.crt")
    client = connect(good, client_id="tls-ok", protocol="5")
    client.disconnect()
    client.loop_stop()
    other = tmp_path / "other"
    other.mkdir()
    make_ca(other, "other-ca")
    wrong = good.model_copy(update={"mqtt_ca_file": other / "other-ca.crt"})
    with pytest.raises(BrokerError) as failure:
        connect(wrong, client_id="tls-wrong", protocol="5")
    message = str(failure.value)
    assert "certificate" in message and "other-ca.crt" in message, message
    assert failure.value.hint and "PARKCARBON_MQTT_CA_FILE" in failure.value.hint


def test_rerun_keeps_passwords_rotate_changes_one_and_registry_changes_apply(
        tmp_path: Path) -> None:
    out = tmp_path / "creds"
    kwargs: dict[str, Any] = {"topic_prefix": PREFIX,
                              "project_conf": ROOT / "config/mosquitto/mosquitto.conf"}
    first = generate(out, enterprise_ids=["E01", "E02", "E03"], **kwargs)
    assert first.created == ["ingest", "service", "E01", "E02", "E03"]
    before = {p.name: p.read_text() for p in (out / "secrets").iterdir()}
    again = generate(out, enterprise_ids=["E01", "E02", "E03"], **kwargs)
    assert again.created == again.rotated == again.removed == []
    assert {p.name: p.read_text() for p in (out / "secrets").iterdir()} == before
    rotated = generate(out, enterprise_ids=["E01", "E02", "E04"], rotate=["E02"], **kwargs)
    assert rotated.rotated == ["E02"] and rotated.created == ["E04"]
    assert rotated.removed == ["E03"]
    after = {p.name: p.read_text() for p in (out / "secrets").iterdir()}
    assert after["E01.password"] == before["E01.password"]
    assert after["E02.password"] != before["E02.password"]
    assert "E03.password" not in after
    acl = (out / "acl").read_text()
    assert "user E03" not in acl and "topic write park/E04/#" in acl
    users = {line.split(":")[0] for line in (out / "passwd").read_text().splitlines()}
    assert users == {"ingest", "service", "E01", "E02", "E04"}


def test_cli_prints_no_password(tmp_path: Path) -> None:
    out = tmp_path / "creds"
    env = {**os.environ, "PARKCARBON_REGISTRY_FILE": str(EXAMPLE_REGISTRY)}
    run = subprocess.run(
        [str(ROOT / ".venv/bin/parkcarbon"), "mqtt", "credentials", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "16 accounts" in run.stdout
    for path in (out / "secrets").iterdir():
        secret = path.read_text().strip()
        assert secret not in run.stdout and secret not in run.stderr
    bad = subprocess.run(
        [str(ROOT / ".venv/bin/parkcarbon"), "mqtt", "credentials", "--out", str(out),
         "--rotate", "E99"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert bad.returncode == 2 and "E99" in bad.stderr and "Traceback" not in bad.stderr


def test_ingest_stores_nothing_published_into_another_enterprise(
        secure_broker: SecureBroker, secured_db: SecuredDb) -> None:
    """The real ingest service, logged in to the broker as `ingest` and to PostgreSQL as
    the ingest role: E01's reading for its own meter is stored, the one it sent into
    E02's topics is not (the broker dropped it)."""
    from parkcarbon.ingest.service import IngestService, flush_and_wait_idle

    role = roles.ingest_role(secured_db.settings)
    settings = secure_broker.settings(
        "ingest", database_url=SecretStr(secured_db.dsn), database_user=role,
        database_password=SecretStr(roles.read_secret(
            roles.password_file(secured_db.settings, role))),
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:6]}")
    service = IngestService(settings, load_registry(EXAMPLE_REGISTRY))
    service.start()
    try:
        assert service.wait_subscribed(10)
        e1 = secure_broker.settings("E01")
        _publish(e1, f"{PREFIX}/E02/E02-ELEC-1", _reading(777), "3.1.1")
        assert _publish_v5(e1, f"{PREFIX}/E02/E02-ELEC-1", _reading(778)) == 135
        _publish(e1, f"{PREFIX}/E01/E01-ELEC-1", _reading(779), "3.1.1")
        # inside its own topics but naming E02's meter: the broker lets it through, the
        # ingest topic check dead-letters it (defence in depth)
        _publish(e1, f"{PREFIX}/E01/E02-ELEC-1", _reading(780), "3.1.1")
        assert flush_and_wait_idle(service, min_messages=2, timeout_seconds=20)
    finally:
        service.stop(timeout_seconds=10)
    with psycopg.connect(secured_db.dsn) as conn:
        stored = conn.execute(
            "SELECT meter_id, value FROM readings WHERE value >= 777 ORDER BY 1").fetchall()
        dead = conn.execute("SELECT count(*) FROM dead_letters "
                            "WHERE topic = 'park/E02/E02-ELEC-1'").fetchone()
        checked = conn.execute("SELECT count(*) FROM dead_letters "
                               "WHERE topic = 'park/E01/E02-ELEC-1'").fetchone()
    assert stored == [("E01-ELEC-1", 779.0)]
    assert dead == (0,)  # never reached ingest
    assert checked == (1,)

