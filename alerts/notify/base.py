"""The notifier interface and the HTTP helper the HTTP channels share."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from parkcarbon.alerts.constants import SEND_TIMEOUT_SECONDS
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.templates import Renderer


class Notifier:
    """One configured channel. ``send`` delivers messages or raises ``DeliveryError``."""

    kind: ClassVar[str] = ""
    batches: ClassVar[bool] = False  # True: several messages become one digest

    def __init__(self, channel: Any, settings: Any, renderer: Renderer) -> None:
        self.channel = channel
        self.settings = settings
        self.renderer = renderer

    @property
    def language(self) -> str | None:
        return getattr(self.channel, "language", None)

    def fitting(self, messages: list[dict[str, Any]]) -> int:
        """How many of ``messages`` (from the first) one ``send`` carries whole."""
        return len(messages)

    def send(self, messages: list[dict[str, Any]]) -> str:
        raise NotImplementedError


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None
              ) -> tuple[int, Any]:
    """POST JSON; (HTTP status, decoded JSON body or text). Network errors and HTTP
    errors raise ``DeliveryError`` (retryable unless a 4xx other than 408/429)."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=SEND_TIMEOUT_SECONDS) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        text = exc.read()[:300].decode("utf-8", "replace")
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"HTTP {exc.code}", detail=f"HTTP {exc.code}: {text}",
                            retry=retry) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {_host(url)}: {reason}") from exc
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body[:300].decode("utf-8", "replace")


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url
