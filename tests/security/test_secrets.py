"""Secrets: connection parts and ``*_FILE`` settings, and no secret in anything a run
writes (stdout, stderr, logs, errors, ``config settings``, ``/metrics``, ``/healthz``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from parkcarbon.db import connect, database_label, dsn_of, redact_dsn
from parkcarbon.errors import ConfigError, DatabaseError
from parkcarbon.settings import load_settings
from support import ROOT, Broker, free_port, wait_port

PARKCARBON = str(ROOT / ".venv/bin/parkcarbon")


def _secret() -> str:
    # every character a URL would need quoted, and one no log line would hold by chance
    return f"p@ss/w:rd?#&='\" {uuid.uuid4().hex}"


def _run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PARKCARBON, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=timeout)


def _fragments(secret: str) -> list[str]:
    """The secret and its halves: a half-masked password is a leak too."""
    import urllib.parse

    return [secret, secret[: len(secret) // 2], secret[len(secret) // 2:],
            secret.split("@")[1], urllib.parse.quote(secret, safe="")[-20:]]


def test_connection_from_parts_takes_any_password(migrated_dsn: str, tmp_path: Path) -> None:
    secret = _secret()
    parts = conninfo.conninfo_to_dict(migrated_dsn)
    password_file = tmp_path / "db.password"
    password_file.write_text(secret + "\n")
    settings = load_settings(
        database_url="postgresql://nowhere.invalid/wrong", database_host=str(parts["host"]),
        database_port=int(str(parts.get("port", 5432))), database_user="postgres",
        database_name=str(parts["dbname"]), database_password_file=password_file)
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == secret  # newline dropped
    assert conninfo.conninfo_to_dict(dsn_of(settings))["password"] == secret
    with connect(settings) as conn:
        (db,) = conn.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
    assert db == parts["dbname"]
    label = database_label(settings)
    assert secret not in label and label.endswith(f"/{parts['dbname']}")
    with pytest.raises(ConfigError, match="either database_password or"):
        load_settings(database_password="x", database_password_file=password_file)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(database_password_file=tmp_path / "missing")


def test_redaction_keeps_parameters_and_hides_all_of_the_password() -> None:
    secret = "p@ss/w@rd"
    for dsn in (f"postgresql://u:{secret}@db.example:5432/park?sslmode=require&application_name=x",
                f"postgres://u:{secret}@db.example/park"):
        shown = redact_dsn(dsn)
        assert "p@ss" not in shown and "w@rd" not in shown and "rd@" not in shown, shown
        assert shown.startswith("postgres") and "u:***@db.example" in shown
    shown = redact_dsn("postgresql://u@h/db?password=s3cret&sslmode=require&connect_timeout=3")
    assert shown == "postgresql://u@h/db?password=***&sslmode=require&connect_timeout=3"
    assert redact_dsn("host=h password='a b\\' c' user=u") == "host=h password=*** user=u"


def test_a_database_url_that_is_not_a_url_is_one_line(tmp_path: Path) -> None:
    secret = _secret()
    for url in (f"not a url {secret}", f"http//{secret}"):
        run = _run("db", "status", env={"PARKCARBON_DATABASE_URL": url})
        assert run.returncode == ConfigError.exit_code, run.stderr
        assert "Traceback" not in run.stderr
        assert "database_url" in run.stderr and "not a PostgreSQL connection URL" in run.stderr
        for fragment in _fragments(secret):
            assert fragment not in run.stderr + run.stdout
    with pytest.raises(DatabaseError, match="not a PostgreSQL URL"):
        connect(f"nonsense {secret}")


def test_no_secret_in_errors_settings_or_a_running_service(
        migrated_dsn: str, broker: Broker, tmp_path: Path) -> None:
    db_secret, mqtt_secret = _secret(), broker.password
    (tmp_path / "db.password").write_text(db_secret)
    (tmp_path / "mqtt.password").write_text(mqtt_secret + "\n")
    closed = free_port()
    base = {
        "PARKCARBON_DATABASE_PASSWORD_FILE": str(tmp_path / "db.password"),
        "PARKCARBON_MQTT_PASSWORD_FILE": str(tmp_path / "mqtt.password"),
        "PARKCARBON_MQTT_USERNAME": broker.username,
        "PARKCARBON_MQTT_PORT": str(broker.port),
        "PARKCARBON_LOG_LEVEL": "DEBUG",
    }
    written: list[str] = []
    # errors: a closed database port, with the password in the URL and in a file
    for env in ({**base, "PARKCARBON_DATABASE_URL": f"postgresql://127.0.0.1:{closed}/x"},
                {"PARKCARBON_DATABASE_URL":
                 f"postgresql://u:{urllib.parse.quote(db_secret, safe='')}"
                 f"@127.0.0.1:{closed}/x?sslmode=disable"}):
        run = _run("db", "status", env=env)
        assert run.returncode == DatabaseError.exit_code, run.stderr
        written += [run.stdout, run.stderr]
    # settings in every format
    for fmt in ("table", "json", "csv"):
        run = _run("config", "settings", "--format", fmt,
                   env={**base, "PARKCARBON_DATABASE_URL": migrated_dsn})
        assert run.returncode == 0, run.stderr
        assert "database_password" in run.stdout
        written += [run.stdout, run.stderr]
    # a running service: logs, /metrics and /healthz
    port = free_port()
    env = {**os.environ, **base, "PARKCARBON_DATABASE_URL": migrated_dsn,
           "PARKCARBON_METRICS_PORT": str(port),
           "PARKCARBON_MQTT_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:6]}"}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([PARKCARBON, "run", "--only", "ingest"], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            wait_port(port, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                                timeout=5) as r:
                        written.append(r.read().decode())
                        break
                except OSError:
                    time.sleep(0.2)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
            assert "parkcarbon" in metrics
            written.append(metrics)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    written.append(log.read_text(errors="replace"))
    assert "DEBUG" in written[-1] or "INFO" in written[-1]
    everything = "\n".join(written)
    for fragment in (*_fragments(db_secret), mqtt_secret):
        assert fragment not in everything, f"secret fragment {fragment!r} was written"
    with psycopg.connect(migrated_dsn) as conn:  # the service did reach the database
        assert conn.execute("SELECT 1").fetchone()
