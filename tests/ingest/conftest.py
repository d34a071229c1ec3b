"""Ingest fixtures: the loss tests run against every broker a park runs that this
machine has (Mosquitto always; RabbitMQ's MQTT plugin when rabbitmqctl works here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import project_broker
from support.brokers import RabbitMQBroker, rabbitmq_unavailable


@pytest.fixture(params=["mosquitto", "rabbitmq"])
def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A running broker: the project's Mosquitto, or RabbitMQ MQTT in a virtual host of
    its own (skipped with one line when RabbitMQ cannot be driven from here)."""
    if request.param == "mosquitto":
        broker = project_broker(tmp_path / "mosquitto")
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
        return
    why = rabbitmq_unavailable()
    if why:
        pytest.skip(why)
    try:
        rabbit = RabbitMQBroker.create()
    except RuntimeError as exc:
        pytest.skip(f"RabbitMQ MQTT not usable: {exc}")
    try:
        yield rabbit
    finally:
        rabbit.delete()
