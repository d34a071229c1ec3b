"""Other real MQTT brokers for the ingest tests and the benchmark: RabbitMQ's MQTT
plugin and NATS's MQTT gateway (JetStream).

Both return an object with the interface of ``support.Broker`` that tests use
(``port``, ``username``, ``password``, ``protocol``, ``settings()``), so a test
parametrized over brokers stays the same code.

RabbitMQ 3.10: the system broker (127.0.0.1:5672) with its MQTT plugin. Its default
MQTT port 1883 collides with Mosquitto, and ``rabbitmq-plugins enable`` reloads the
application's environment from its defaults (a ``set_env`` before it is lost: it fails
with eaddrinuse on 1883). What works at run time, without touching the broker's config
files or restarting it: load the application, set ``tcp_listeners`` to a free port, then
``application:ensure_all_started(rabbitmq_mqtt)``. Nothing is written to
``enabled_plugins``, so a broker restart comes back without the plugin. Each test gets
its own virtual host (MQTT user name ``<vhost>:<user>``), deleted afterwards with every
queue and session in it. Needs ``rabbitmqctl`` and root (it talks to the node with the
Erlang cookie); otherwise ``unavailable`` says why in one line.

NATS 2.9: a private ``nats-server`` with JetStream, a server name and an ``mqtt``
block, in a temporary folder, on free ports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parkcarbon.settings import Settings
from support import MQTT_PASSWORD, MQTT_USER, free_port, wait_port

RABBITMQ_USER = "parkcarbon-test"
# rabbitmqctl starts an Erlang VM per call (~1 s): these are the only calls per test.
_RABBITMQCTL_TIMEOUT_SECONDS = 60

# Starts the MQTT plugin on ``{port}`` unless it already runs; prints its listeners.
_RABBITMQ_START = """
application:load(rabbitmq_mqtt),
case lists:keymember(rabbitmq_mqtt, 1, application:which_applications()) of
    true -> ok;
    false ->
        application:set_env(rabbitmq_mqtt, tcp_listeners, [{{"127.0.0.1", {port}}}]),
        {{ok, _}} = application:ensure_all_started(rabbitmq_mqtt)
end,
application:get_env(rabbitmq_mqtt, tcp_listeners).
"""


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True,
                          timeout=_RABBITMQCTL_TIMEOUT_SECONDS)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = lines[-1] if lines else f"exit code {done.returncode}"
        raise RuntimeError(f"rabbitmqctl {args[0]} failed: {why}")
    return done.stdout


def rabbitmq_unavailable() -> str | None:
    """Why RabbitMQ MQTT cannot be used by the tests here (one line), or None."""
    if shutil.which("rabbitmqctl") is None:
        return "RabbitMQ is not installed (no rabbitmqctl)"
    if os.geteuid() != 0:
        return "RabbitMQ MQTT tests need root (rabbitmqctl reads the node's Erlang cookie)"
    return None


def rabbitmq_mqtt_port() -> int:
    """The port of RabbitMQ's MQTT listener, started on a free port if it is not running."""
    out = _rabbitmqctl("eval", _RABBITMQ_START.format(port=free_port()))
    ports = [int(p) for p in re.findall(r"(\d+)\}", out)] or [
        int(p) for p in re.findall(r"\[(\d+)\]", out)]
    if not ports:
        raise RuntimeError(f"cannot read RabbitMQ's MQTT listener from {out.strip()!r}")
    if ports[0] == 1883:
        raise RuntimeError("RabbitMQ's MQTT plugin runs on 1883 (Mosquitto's port): "
                           "set mqtt.listeners.tcp.default to a free port")
    wait_port(ports[0])
    return ports[0]


@dataclass
class RabbitMQBroker:
    """RabbitMQ's MQTT plugin, one virtual host per instance (``delete()`` drops it)."""

    port: int
    vhost: str
    password: str = MQTT_PASSWORD
    protocol: str = "3.1.1"  # RabbitMQ 3.10 speaks MQTT 3.1.1 only
    name: str = "rabbitmq"

    @property
    def username(self) -> str:
        return f"{self.vhost}:{RABBITMQ_USER}"

    @classmethod
    def create(cls) -> RabbitMQBroker:
        port = rabbitmq_mqtt_port()
        users = _rabbitmqctl("list_users", "--quiet")
        if not re.search(rf"^{re.escape(RABBITMQ_USER)}\s", users, re.M):
            _rabbitmqctl("add_user", RABBITMQ_USER, MQTT_PASSWORD)
        vhost = f"pctest_{uuid.uuid4().hex[:10]}"
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
        return cls(port=port, vhost=vhost)

    def prefetch(self) -> int:
        """``mqtt.prefetch``: unacknowledged QoS 1 messages per subscriber."""
        out = _rabbitmqctl("eval", "application:get_env(rabbitmq_mqtt, prefetch).")
        found = re.search(r"(\d+)", out)
        return int(found.group(1)) if found else 10

    def delete(self) -> None:
        _rabbitmqctl("delete_vhost", self.vhost)

    def settings(self, **more: Any) -> Settings:
        base: dict[str, Any] = {"mqtt_host": "127.0.0.1", "mqtt_port": self.port,
                                "mqtt_username": self.username, "mqtt_password": self.password,
                                "mqtt_protocol": self.protocol, "metrics_port": None}
        return Settings(**{**base, **more})


@dataclass
class NatsBroker:
    """A private nats-server with JetStream and its MQTT gateway (MQTT 3.1.1)."""

    workdir: Path
    port: int = field(default_factory=free_port)  # MQTT
    nats_port: int = field(default_factory=free_port)
    max_ack_pending: int | None = None  # None: NATS's default (1024)
    username: str = MQTT_USER
    password: str = MQTT_PASSWORD
    protocol: str = "3.1.1"
    name: str = "nats"
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pending = (f"  max_ack_pending: {self.max_ack_pending}\n"
                   if self.max_ack_pending is not None else "")
        conf = self.workdir / "nats.conf"
        conf.write_text(
            f"server_name: pc_test_{self.nats_port}\n"
            f"listen: 127.0.0.1:{self.nats_port}\n"
            f"jetstream {{ store_dir: \"{self.workdir / 'js'}\" }}\n"
            f"authorization {{ users: [{{ user: {self.username}, "
            f"password: \"{self.password}\" }}] }}\n"
            f"mqtt {{\n  listen: 127.0.0.1:{self.port}\n{pending}}}\n")
        with (self.workdir / "nats.log").open("ab") as log:
            self.process = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=log,
                                            stderr=subprocess.STDOUT)
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

    def settings(self, **more: Any) -> Settings:
        base: dict[str, Any] = {"mqtt_host": "127.0.0.1", "mqtt_port": self.port,
                                "mqtt_username": self.username, "mqtt_password": self.password,
                                "mqtt_protocol": self.protocol, "metrics_port": None}
        return Settings(**{**base, **more})


def nats_unavailable() -> str | None:
    if shutil.which("nats-server") is None:
        return "nats-server is not installed"
    return None


__all__ = ["MQTT_USER", "NatsBroker", "RabbitMQBroker", "nats_unavailable",
           "rabbitmq_mqtt_port", "rabbitmq_unavailable"]
