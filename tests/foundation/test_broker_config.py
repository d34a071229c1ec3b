"""The project's Mosquitto config runs on the real binary, with auth and persistence."""

from __future__ import annotations

import subprocess

from support import MQTT_PASSWORD, MQTT_USER, Broker


def _pub(broker: Broker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "park/E01/x",
         "-m", "1", "-q", "1", *args],
        capture_output=True, text=True, timeout=10,
    )


def test_broker_requires_credentials(broker: Broker) -> None:
    assert _pub(broker).returncode != 0
    assert _pub(broker, "-u", MQTT_USER, "-P", MQTT_PASSWORD).returncode == 0


def test_queue_limit_raised_in_project_config(broker: Broker) -> None:
    text = broker.conf.read_text()
    assert "max_queued_messages 0" in text
    assert "persistence true" in text
