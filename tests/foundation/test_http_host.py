"""/metrics and /healthz have no authentication: they listen on 127.0.0.1 unless the
``metrics_host`` setting says otherwise (#11 point 10)."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from parkcarbon.http import HealthServer
from parkcarbon.settings import Settings
from support import free_port


def other_local_address() -> str:
    """An address of this host that is not 127.0.0.1 (127.0.0.2 is loopback on Linux
    but not the address the endpoint binds by default)."""
    return "127.0.0.2"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def serve(**kwargs: object) -> HealthServer:
    server = HealthServer(lambda: {"healthy": True}, lambda: "m 1\n", free_port(),
                          **kwargs)  # type: ignore[arg-type]
    server.start()
    return server


def test_default_is_loopback_only() -> None:
    assert Settings().metrics_host == "127.0.0.1"
    server = serve()
    try:
        assert reachable("127.0.0.1", server.port)
        assert not reachable(other_local_address(), server.port)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            assert r.read() == b"m 1\n"
    finally:
        server.stop()


def test_every_interface_when_configured() -> None:
    host = Settings(metrics_host="0.0.0.0").metrics_host
    server = serve(host=host)
    try:
        assert reachable(other_local_address(), server.port)
    finally:
        server.stop()


def test_ingest_uses_the_setting(migrated_dsn: str) -> None:
    from parkcarbon.ingest.service import IngestService
    from parkcarbon.registry import load_registry
    from support import EXAMPLE_REGISTRY

    port = free_port()
    settings = Settings(database_url=migrated_dsn, metrics_port=port, mqtt_port=free_port(),
                        mqtt_client_id="ingest-http-host")
    service = IngestService(settings, load_registry(EXAMPLE_REGISTRY))
    service.start()
    try:
        assert reachable("127.0.0.1", port)
        assert not reachable(other_local_address(), port)
    finally:
        service.stop(timeout_seconds=5)


@pytest.mark.parametrize("host", ["256.1.1.1"])
def test_unusable_host_is_one_clear_error(host: str) -> None:
    from parkcarbon.errors import EndpointError

    with pytest.raises(EndpointError, match=f"cannot serve /healthz and /metrics on {host}"):
        HealthServer(lambda: {"healthy": True}, lambda: "", free_port(), host=host)
