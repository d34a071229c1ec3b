"""Ingest service helpers shared by the ingest tests: settings for a test broker and
database, and a running service that is stopped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from parkcarbon.ingest.service import IngestService
from parkcarbon.registry import Registry
from parkcarbon.settings import Settings
from support import Broker


def settings_for(dsn: str, broker: Broker | Any, **more: object) -> Settings:
    """Settings for ingest on ``dsn`` and ``broker`` (a ``support.Broker`` or one of
    ``support.brokers``: its MQTT version), a fresh client id, no metrics."""
    values: dict[str, object] = {
        "database_url": dsn, "mqtt_port": broker.port, "mqtt_username": broker.username,
        "mqtt_password": broker.password, "metrics_port": None,
        "mqtt_protocol": getattr(broker, "protocol", "5"),
        "mqtt_client_id": f"ingest-{uuid.uuid4().hex[:8]}",
    }
    values.update(more)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def running(settings: Settings, registry: Registry,
            subscribe_seconds: float = 20) -> Iterator[IngestService]:
    """An ingest service, subscribed within ``subscribe_seconds``, stopped afterwards."""
    service = IngestService(settings, registry)
    service.start()
    try:
        assert service.wait_subscribed(subscribe_seconds), "ingest did not subscribe"
        yield service
    finally:
        service.stop(timeout_seconds=10)
