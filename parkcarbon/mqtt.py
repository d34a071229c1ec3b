"""The one MQTT client factory: every client parkcarbon opens is made here.

``make_client`` applies the settings every client needs (protocol version, user name
and password, TLS with the configured CA file, reconnect backoff); ``connect`` opens a
blocking connection and turns a refusal into ``BrokerError`` / ``BrokerAuthError``;
``subscribe_and_wait`` returns once the broker's SUBACK has arrived, so a caller never
has to guess with a sleep; ``broker_problem`` says in one line why a broker cannot be
used (or None). Ingest, the simulator, the demo and the tests all use these.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from parkcarbon.errors import BrokerAuthError, BrokerError, ConfigError
from parkcarbon.settings import Settings

# CONNACK reason codes that retrying cannot fix: Bad user name or password, Not
# authorized (paho maps MQTT 3.1.1 return codes 4 and 5 to these).
AUTH_FAILURES = frozenset({134, 135})
# A broker on this host answers CONNECT within milliseconds; ten seconds covers a busy
# remote one without leaving a command hanging.
CONNECT_TIMEOUT_SECONDS = 10.0
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
KEEPALIVE_SECONDS = 30
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30


def protocol_of(version: str) -> MQTTProtocolVersion:
    """paho's protocol constant for ``"5"`` or ``"3.1.1"``."""
    return mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311


def make_client(
    settings: Settings,
    *,
    client_id: str,
    protocol: str | None = None,
    clean: bool = True,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client with credentials, TLS and reconnect backoff (no callbacks set).

    ``protocol`` defaults to ``settings.mqtt_protocol``. ``clean=False`` asks for a
    persistent session (MQTT 3.1.1 ``clean_session=False``; with MQTT 5 the caller
    passes ``clean_start=False`` and a session expiry when connecting).
    """
    version = protocol or settings.mqtt_protocol
    v5 = version == "5"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol_of(version),
        clean_session=None if v5 else clean,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        secret = settings.mqtt_password
        client.username_pw_set(
            settings.mqtt_username, secret.get_secret_value() if secret else None
        )
    if settings.mqtt_tls:
        try:
            client.tls_set(
                ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"mqtt_ca_file (env PARKCARBON_MQTT_CA_FILE) {settings.mqtt_ca_file}: "
                f"not a readable CA certificate file ({getattr(exc, 'strerror', None) or exc})"
            ) from exc
    client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
    return client


def broker_label(settings: Settings) -> str:
    return f"{settings.mqtt_host}:{settings.mqtt_port}"


def connect(
    settings: Settings,
    *,
    client_id: str,
    protocol: str | None = None,
    timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
    max_inflight: int | None = None,
) -> mqtt.Client:
    """A connected client (clean session) with its network loop running.

    ``max_inflight``: QoS 1 messages this client may have awaiting PUBACK at once
    (paho's default is 20).

    Raises ``BrokerAuthError`` when the broker refuses the credentials and
    ``BrokerError`` when it cannot be reached or refuses for another reason.
    Disconnect with ``client.disconnect(); client.loop_stop()``.
    """
    client = make_client(settings, client_id=client_id, protocol=protocol)
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result["reason"] = reason
        done.set()

    client.on_connect = on_connect
    where = broker_label(settings)
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=KEEPALIVE_SECONDS)
    except ssl.SSLCertVerificationError as exc:
        _close_sockets_of(exc)
        ca = settings.mqtt_ca_file or "the system store"
        raise BrokerError(
            f"MQTT broker {where}: its TLS certificate is not trusted by {ca}: "
            f"{exc.verify_message}",
            hint="set PARKCARBON_MQTT_CA_FILE to the CA certificate that signed the "
            "broker's certificate",
        ) from exc
    except ssl.SSLError as exc:
        _close_sockets_of(exc)
        raise BrokerError(
            f"TLS handshake with MQTT broker {where} failed: {exc.reason or exc}",
            hint="is PARKCARBON_MQTT_PORT the broker's TLS listener (8883)? "
            "or set PARKCARBON_MQTT_TLS=false for a plain listener",
        ) from exc
    except (OSError, ValueError) as exc:
        raise BrokerError(
            f"cannot connect to MQTT broker {where}: {exc}",
            hint="is the broker running? set PARKCARBON_MQTT_HOST / PARKCARBON_MQTT_PORT",
        ) from exc
    client.loop_start()
    reason = result.get("reason") if done.wait(timeout_seconds) else None
    if reason is None or reason.is_failure:
        client.loop_stop()
        client.disconnect()
        if reason is None:
            raise BrokerError(f"MQTT broker {where} did not answer within {timeout_seconds:g} s")
        if reason.value in AUTH_FAILURES:
            raise BrokerAuthError(
                f"MQTT broker {where} refused the credentials: {reason}",
                hint="set PARKCARBON_MQTT_USERNAME / PARKCARBON_MQTT_PASSWORD",
            )
        raise BrokerError(f"MQTT broker {where} refused the connection: {reason}")
    client.on_connect = None
    return client


def _close_sockets_of(exc: BaseException) -> None:
    """Close the sockets a failed TLS handshake left open inside paho (it does not)."""
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


def subscribe_and_wait(
    client: mqtt.Client, topic: str, *, qos: int = 1,
    timeout_seconds: float = SUBSCRIBE_TIMEOUT_SECONDS,
) -> None:
    """Subscribe and return once the broker granted it (SUBACK received).

    Raises ``BrokerError`` if the broker refuses the subscription or does not answer.
    Any ``on_subscribe`` callback already set keeps being called.
    """
    acked: dict[int, Any] = {}
    arrived = threading.Condition()
    previous: Any = client.on_subscribe

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, codes: Any, props: Any) -> None:
        with arrived:
            acked[mid] = codes
            arrived.notify_all()
        if previous is not None:
            previous(c, u, mid, codes, props)

    client.on_subscribe = on_subscribe
    try:
        rc, mid = client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerError(f"cannot subscribe to {topic}: {mqtt.error_string(rc)}")
        with arrived:  # the SUBACK may already be in: ``acked`` keeps it
            if not arrived.wait_for(lambda: mid in acked, timeout_seconds):
                raise BrokerError(f"the broker did not acknowledge the subscription to {topic}")
    finally:
        client.on_subscribe = previous
    failures = [c for c in acked[mid] if c.is_failure]
    if failures:
        raise BrokerError(f"the broker refused the subscription to {topic}: {failures[0]}")


def broker_problem(settings: Settings, *, client_id: str = "parkcarbon-check") -> str | None:
    """None if the configured broker accepts a connection with the configured
    credentials, else one line saying why not."""
    try:
        client = connect(settings, client_id=client_id, protocol="3.1.1", timeout_seconds=5.0)
    except BrokerError as exc:
        return str(exc)
    client.disconnect()
    client.loop_stop()
    return None
