"""Helpers shared by tests (importable as ``support`` thanks to pytest's pythonpath)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parkcarbon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REGISTRY = ROOT / "config" / "park.yaml"
MOSQUITTO_CONF = ROOT / "config" / "mosquitto" / "mosquitto.conf"
ADMIN_DSN = os.environ.get("PARKCARBON_TEST_DSN", "postgresql://127.0.0.1:5432/postgres")
MQTT_USER, MQTT_PASSWORD = "ingest", "test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Broker:
    """A mosquitto started from the project's config/mosquitto/mosquitto.conf."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    username: str = MQTT_USER
    password: str = MQTT_PASSWORD
    protocol: str = "5"  # the MQTT version ingest uses with this broker
    name: str = "mosquitto"

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> None:
        with (self.workdir / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port(self.port)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def settings(self, **more: Any) -> Settings:
        """Settings pointing at this broker with its credentials (no metrics port)."""
        base: dict[str, Any] = {"mqtt_host": "127.0.0.1", "mqtt_port": self.port,
                                "mqtt_username": self.username,
                                "mqtt_password": self.password, "metrics_port": None}
        return Settings(**{**base, **more})


def project_broker(workdir: Path) -> Broker:
    """Write a test copy of the project's broker config and return the broker (not started).

    Only the listener port, persistence folder and password file path change.
    """
    if shutil.which("mosquitto") is None:
        pytest.exit("mosquitto is not installed (apt-get install mosquitto)", returncode=3)
    port = free_port()
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    passwd = workdir / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), MQTT_USER, MQTT_PASSWORD],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    lines = []
    for line in MOSQUITTO_CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "persistence_location":
            line = f"persistence_location {data}/"
        elif key == "password_file":
            line = f"password_file {passwd}"
        lines.append(line)
    if os.geteuid() == 0:
        # mosquitto started as root drops to user "mosquitto", which cannot read the
        # test's private temporary folder; production runs it as its own user.
        lines.append("user root")
    broker = Broker(port=port, workdir=workdir)
    broker.conf.write_text("\n".join(lines) + "\n")
    return broker




# --- MQTT publishing and a private PostgreSQL cluster (added with the ingest tests) ---


def mqtt_publish(
    broker: Broker,
    messages: list[tuple[str, bytes]],
    *,
    qos: int = 1,
    client_id: str = "test-publisher",
    timeout: float = 60.0,
) -> None:
    """Publish ``(topic, payload)`` pairs and wait until the broker acknowledged all."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(broker.username, broker.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
            if not info.is_published():
                raise TimeoutError(f"broker did not acknowledge message {info.mid}")
    finally:
        client.disconnect()
        client.loop_stop()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port, for tests that stop the server.

    Runs ``initdb``/``pg_ctl`` as the ``postgres`` user when the tests run as root
    (initdb refuses root). Trust authentication on 127.0.0.1 only. ``stop()`` defaults
    to ``-m immediate``, i.e. a crash; ``start()`` again recovers from the WAL.
    """

    def __init__(self) -> None:
        import tempfile

        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="parkcarbon-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/parkcarbon"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                  "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        import contextlib

        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
