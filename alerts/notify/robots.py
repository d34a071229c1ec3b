"""WeCom, DingTalk and Feishu group robots: markdown, signatures, errcode checked.

All three answer HTTP 200 with a JSON error code; anything but 0 is a failure that the
outbox retries and logs (apprise treats the 200 as success). Several due messages for
one robot are merged into one digest (``batches``) cut to ``ROBOT_MAX_BYTES``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

from parkcarbon.alerts.constants import ROBOT_MAX_BYTES
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.notify.base import Notifier, post_json


def _cut(text: str, limit: int = ROBOT_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 20].decode("utf-8", "ignore") + "\n…（已截断）"


def _check(body: Any, key: str, provider: str) -> str:
    if not isinstance(body, dict):
        raise DeliveryError(f"{provider} answered no JSON", detail=f"{provider}: {body!r}")
    code = body.get(key, body.get("StatusCode"))
    msg = body.get("errmsg", body.get("msg", body.get("StatusMessage", "")))
    if code != 0:
        raise DeliveryError(f"{provider} {key} {code}: {msg}",
                            detail=f"{provider} {key}={code} {msg}")
    return f"{provider} {key}=0"


class _Robot(Notifier):
    batches = True

    def digest(self, messages: list[dict[str, Any]], mentions: tuple[str, ...] = ()
               ) -> tuple[str, str]:
        parts = [self.renderer.render(m, "markdown", language=self.language,
                                      mentions=mentions if n == len(messages) - 1 else ())
                 for n, m in enumerate(messages)]
        title = messages[0]["title"] if len(messages) == 1 else \
            f"{messages[0]['title']} 等{len(messages)}条消息"
        return title, _cut("\n\n".join(parts))

    def fitting(self, messages: list[dict[str, Any]]) -> int:
        """The leading messages whose digest fits ``ROBOT_MAX_BYTES`` whole (at least
        one, cut if it alone is too long), with room for the title and mentions."""
        size = 0
        for n, m in enumerate(messages):
            size += len(self.renderer.render(m, "markdown", language=self.language)
                        .encode("utf-8")) + 2
            if n and size > ROBOT_MAX_BYTES - 256:
                return n
        return len(messages)


class WeComNotifier(_Robot):
    kind = "wecom"

    def send(self, messages: list[dict[str, Any]]) -> str:
        _, text = self.digest(messages, self.channel.mentions)
        url = f"{self.channel.url}?{urlencode({'key': self.channel.key.resolve()})}"
        _, body = post_json(url, {"msgtype": "markdown", "markdown": {"content": text}})
        return _check(body, "errcode", "wecom")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), before URL encoding."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class DingTalkNotifier(_Robot):
    kind = "dingtalk"

    def send(self, messages: list[dict[str, Any]]) -> str:
        title, text = self.digest(messages)
        mobiles = list(self.channel.at_mobiles)
        if mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        params = {"access_token": self.channel.access_token.resolve()}
        if self.channel.secret is not None:
            ts = int(time.time() * 1000)
            params.update(timestamp=str(ts), sign=dingtalk_sign(self.channel.secret.resolve(), ts))
        url = f"{self.channel.url}?{urlencode(params)}"  # encoded once, not twice
        _, body = post_json(url, {"msgtype": "markdown",
                                  "markdown": {"title": title[:60], "text": text},
                                  "at": {"atMobiles": mobiles, "isAtAll": False}})
        return _check(body, "errcode", "dingtalk")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuNotifier(_Robot):
    kind = "feishu"

    def send(self, messages: list[dict[str, Any]]) -> str:
        title, text = self.digest(messages)
        resolved = all(m["status"] == "resolved" for m in messages)
        payload: dict[str, Any] = {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": title[:100]},
                           "template": "green" if resolved else "red"},
                "elements": [{"tag": "markdown", "content": text}],
            },
        }
        if self.channel.secret is not None:
            ts = int(time.time())
            payload.update(timestamp=str(ts), sign=feishu_sign(self.channel.secret.resolve(), ts))
        url = f"{self.channel.url.rstrip('/')}/{self.channel.token.resolve()}"
        _, body = post_json(url, payload)
        return _check(body, "code", "feishu")
