"""The one MQTT client factory against the project's real Mosquitto (authentication on)."""

from __future__ import annotations

import threading

import pytest

from parkcarbon import mqtt as pcmqtt
from parkcarbon.errors import BrokerAuthError, BrokerError
from support import Broker, free_port


def test_connect_subscribe_and_wait_then_receive(broker: Broker) -> None:
    settings = broker.settings()
    got: list[bytes] = []
    arrived = threading.Event()
    sub = pcmqtt.connect(settings, client_id="t-factory-sub", protocol="5")
    sub.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
    try:
        pcmqtt.subscribe_and_wait(sub, "park/E01/#")
        # the SUBACK is in: a message published now is delivered, with no sleep
        pub = pcmqtt.connect(settings, client_id="t-factory-pub")
        try:
            pub.publish("park/E01/E01-ELEC-1", b"x", qos=1).wait_for_publish(10)
        finally:
            pub.disconnect()
            pub.loop_stop()
        assert arrived.wait(10)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert got == [b"x"]


def test_bad_credentials_are_an_auth_error(broker: Broker) -> None:
    settings = broker.settings(mqtt_password="wrong")
    with pytest.raises(BrokerAuthError, match="refused the credentials"):
        pcmqtt.connect(settings, client_id="t-factory-bad")
    assert "refused the credentials" in (pcmqtt.broker_problem(settings) or "")


def test_closed_port_is_a_broker_error_in_one_line(broker: Broker) -> None:
    settings = broker.settings(mqtt_port=free_port())
    with pytest.raises(BrokerError, match="cannot connect to MQTT broker") as err:
        pcmqtt.connect(settings, client_id="t-factory-closed")
    assert "\n" not in str(err.value) and err.value.exit_code == 5
    assert pcmqtt.broker_problem(broker.settings()) is None
