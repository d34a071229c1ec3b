"""Signed, expiring acknowledge links, served by ``parkcarbon run``'s HTTP endpoint.

A link names the alert instance, its episode and an expiry, signed with HMAC-SHA256
under the secret of ``ack.secret`` in the alerts file::

    <ack.base_url>/alerts/ack?i=<instance id>&e=<episode>&x=<expiry, epoch s>&s=<hex>

GET shows a one-button form (chat apps and mail scanners open links to preview them, so
a GET never acknowledges); its POST acknowledges for ``ack.default_for`` (or the
``for`` field, e.g. ``2h``) under the name typed in. A forged, altered or expired link
is refused (403 / 410) and logged at WARNING; an alert that has resolved or fired again
since is refused with 409.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg

from parkcarbon.alerts.constants import ACK_PATH
from parkcarbon.alerts.errors import AlertsConfigError, AlertsUsageError
from parkcarbon.alerts.models import AlertsConfig, parse_duration
from parkcarbon.errors import DatabaseError

log = logging.getLogger(__name__)


def _mac(secret: str, instance_id: int, episode: int, expires: int) -> str:
    msg = f"{instance_id}.{episode}.{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def sign_link(base_url: str, secret: str, instance_id: int, episode: int,
              expires: datetime) -> str:
    x = int(expires.timestamp())
    query = urlencode({"i": instance_id, "e": episode, "x": x,
                       "s": _mac(secret, instance_id, episode, x)})
    return f"{base_url.rstrip('/')}{ACK_PATH}?{query}"


@dataclass(frozen=True)
class LinkCheck:
    ok: bool
    status: int  # HTTP status to answer when not ok
    reason: str
    instance_id: int = 0
    episode: int = 0


def verify(secret: str, query: dict[str, list[str]], now: datetime) -> LinkCheck:
    try:
        i, e, x = int(query["i"][0]), int(query["e"][0]), int(query["x"][0])
        s = query["s"][0]
    except (KeyError, IndexError, ValueError):
        return LinkCheck(False, 400, "malformed acknowledge link")
    if not hmac.compare_digest(_mac(secret, i, e, x), s):
        return LinkCheck(False, 403, "forged or altered acknowledge link", i, e)
    if now.timestamp() > x:
        return LinkCheck(False, 410, "expired acknowledge link", i, e)
    return LinkCheck(True, 200, "", i, e)


Response = tuple[int, str, bytes]


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (f"<!doctype html><html lang=zh><meta charset=utf-8><title>{html.escape(title)}"
           f"</title><body style='font-family:sans-serif;max-width:36em;margin:2em auto'>"
           f"<h2>{html.escape(title)}</h2>{body}</body></html>")
    return status, "text/html; charset=utf-8", doc.encode()


class AckHandler:
    """The HTTP route ``/alerts/ack`` (``parkcarbon.http`` extra route)."""

    def __init__(self, settings: Any, config: AlertsConfig,
                 clock: Callable[[], datetime] | None = None) -> None:
        if config.ack.secret is None:
            raise AlertsConfigError(f"{config.source}: ack: secret: needed for acknowledge "
                                    "links ({env: NAME} or {file: PATH})")
        self.secret = config.ack.secret.resolve()
        self.settings = settings
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))

    def __call__(self, method: str, target: str, body: bytes, client: str) -> Response:
        query = parse_qs(urlsplit(target).query)
        if method == "POST":
            form = parse_qs(body.decode("utf-8", "replace"))
            query = {**query, **{k: v for k, v in form.items() if k in ("i", "e", "x", "s")}}
        else:
            form = {}
        now = self.clock()
        check = verify(self.secret, query, now)
        if not check.ok:
            log.warning("acknowledge link refused from %s: %s (alert %s, episode %s)",
                        client, check.reason, check.instance_id or "?", check.episode or "?")
            return _page("链接无效 Link refused", f"<p>{html.escape(check.reason)}</p>",
                         check.status)
        if method == "GET":
            hidden = "".join(f"<input type=hidden name={k} value='{html.escape(query[k][0])}'>"
                             for k in ("i", "e", "x", "s"))
            return _page("确认告警 Acknowledge alert", (
                f"<p>告警 #{check.instance_id}</p><form method=post>{hidden}"
                "<p><label>姓名 Name <input name=by required></label></p>"
                "<p><label>时长 For <input name=for value=4h size=5></label></p>"
                "<p><label>备注 Comment <input name=comment></label></p>"
                "<button type=submit>确认 Acknowledge</button></form>"))
        by = (form.get("by") or [""])[0].strip()[:100]
        if not by:
            return _page("缺少姓名 Name missing", "<p>请填写姓名 / enter your name</p>", 400)
        try:
            seconds = parse_duration((form.get("for") or [""])[0] or
                                     self.config.ack.default_for)
        except ValueError as exc:
            return _page("时长无效 Bad duration", f"<p>{html.escape(str(exc))}</p>", 400)
        comment = (form.get("comment") or [""])[0].strip()[:500] or None
        from parkcarbon.alerts.state import acknowledge
        from parkcarbon.db import connect

        try:
            with connect(self.settings) as conn:
                inst = acknowledge(conn, check.instance_id, by=f"{by} (link)",
                                   until=now + timedelta(seconds=seconds), comment=comment,
                                   now=now, episode=check.episode)
                conn.commit()
        except AlertsUsageError as exc:
            return _page("无法确认 Cannot acknowledge", f"<p>{html.escape(str(exc))}</p>", 409)
        except (DatabaseError, psycopg.Error) as exc:
            text = str(exc).strip()
            log.error("acknowledge of alert %d not recorded: database: %s",
                      check.instance_id, text.splitlines()[0] if text else type(exc).__name__)
            return _page("暂时无法确认 Try again later",
                         "<p>数据库暂不可用，确认未记录，请稍后重试。 The database is not "
                         "reachable; nothing was recorded. Try again later.</p>", 503)
        log.info("alert %d acknowledged by %s via link until %s", inst.id, by, inst.ack_until)
        return _page("已确认 Acknowledged", (
            f"<p>告警 #{inst.id} {html.escape(inst.rule_id)} {html.escape(inst.subject)} "
            f"已由 {html.escape(by)} 确认至 {inst.ack_until:%Y-%m-%d %H:%M} UTC。</p>"))


def link_for(config: AlertsConfig, secret: str | None, instance_id: int, episode: int,
             now: datetime) -> str | None:
    if secret is None or config.ack.base_url is None:
        return None
    return sign_link(config.ack.base_url, secret, instance_id, episode,
                     now + timedelta(seconds=config.ack.link_ttl))
