"""MQTT: QoS 1 publish of the Alertmanager-shaped JSON to
``<prefix>/alerts/<enterprise id>`` (``park`` for park staff) for plant systems."""

from __future__ import annotations

import json
import uuid
from typing import Any

from parkcarbon.alerts.constants import SEND_TIMEOUT_SECONDS
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.notify.base import Notifier
from parkcarbon.alerts.notify.webhook import alertmanager_payload
from parkcarbon.errors import BrokerError


class MqttNotifier(Notifier):
    kind = "mqtt"

    def topic(self, m: dict[str, Any]) -> str:
        prefix = self.channel.topic_prefix or self.settings.topic_prefix
        return f"{prefix}/alerts/{m.get('enterprise_id') or 'park'}"

    def send(self, messages: list[dict[str, Any]]) -> str:
        from parkcarbon.mqtt import connect

        try:
            client = connect(self.settings, client_id=f"parkcarbon-alerts-{uuid.uuid4().hex[:8]}")
        except BrokerError as exc:
            raise DeliveryError(str(exc)) from exc
        try:
            topics = []
            for m in messages:
                summaries = [m["title"]] * len(m["alerts"])
                body = json.dumps(alertmanager_payload(m, summaries), ensure_ascii=False)
                info = client.publish(self.topic(m), body.encode(), qos=self.channel.qos)
                info.wait_for_publish(SEND_TIMEOUT_SECONDS)
                if not info.is_published():
                    raise DeliveryError(f"broker did not acknowledge the publish to "
                                        f"{self.topic(m)}")
                topics.append(self.topic(m))
        finally:
            client.disconnect()
            client.loop_stop()
        return f"published QoS {self.channel.qos} to {', '.join(sorted(set(topics)))}"
