"""Channels behind one small interface: ``Notifier.send(messages) -> detail``.

::

    notifier_for(channel, settings, renderer) -> Notifier
     ├── email      SMTP (STARTTLS, TLS or plain), text + HTML, Chinese subject and body
     ├── webhook    Alertmanager webhook JSON (version "4"), so existing bridges work
     ├── wecom      WeCom group robot, markdown with mentions, errcode checked
     ├── dingtalk   DingTalk robot, markdown, 加签 signature, errcode checked
     ├── feishu     Feishu bot, interactive card, 签名校验 signature, code checked
     └── mqtt       QoS 1 publish to ``<prefix>/alerts/<enterprise id | park>``

``send`` raises ``DeliveryError`` (retry with backoff) or returns what the provider
answered (logged with the attempt). Robots (``batches = True``) take several messages
at once and send one digest, so their rate limit (about 20 a minute) is kept by
batching, never by dropping. apprise was not used: its robot plugins treat HTTP 200 as
success without reading the provider's errcode, send WeCom as plain text and do not sign
Feishu requests (see docs/alerts.md).
"""

from __future__ import annotations

from typing import Any

from parkcarbon.alerts.models import AnyChannel
from parkcarbon.alerts.notify.base import Notifier
from parkcarbon.alerts.notify.email import EmailNotifier
from parkcarbon.alerts.notify.mqtt import MqttNotifier
from parkcarbon.alerts.notify.robots import DingTalkNotifier, FeishuNotifier, WeComNotifier
from parkcarbon.alerts.notify.webhook import WebhookNotifier
from parkcarbon.alerts.templates import Renderer

NOTIFIERS: dict[str, type[Notifier]] = {
    "email": EmailNotifier,
    "webhook": WebhookNotifier,
    "wecom": WeComNotifier,
    "dingtalk": DingTalkNotifier,
    "feishu": FeishuNotifier,
    "mqtt": MqttNotifier,
}

__all__ = ["NOTIFIERS", "Notifier", "notifier_for"]


def notifier_for(channel: AnyChannel, settings: Any, renderer: Renderer) -> Notifier:
    return NOTIFIERS[getattr(channel, "type")](channel, settings, renderer)  # noqa: B009
