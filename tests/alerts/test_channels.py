"""Every channel against a real server: aiosmtpd (plain and STARTTLS), local HTTP servers
checking the WeCom, DingTalk and Feishu payloads and signatures and answering errcode 0
or not, and a real Mosquitto for MQTT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import threading
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from alerts_support import T0, Sink, base_config, put_usage, slots

from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.notify import NOTIFIERS, notifier_for
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.alerts.templates import Renderer
from parkcarbon.settings import Settings


def _message(language: str = "zh", n: int = 1) -> dict[str, Any]:
    from parkcarbon.alerts.cli import test_message

    m = test_message("c", "E01", language)
    base = m["alerts"][0]
    m["alerts"] = [{**base, "fingerprint": f"{k:016d}", "rule": "demand",
                    "enterprise_name": "库车塔河石化炼油有限公司", "meter_id": f"E01-ELEC-{k}",
                    "value": 1500.0 + k, "threshold": 1000.0,
                    "ack_url": f"http://ack.example/a?i={k}", "severity": "major",
                    "severity_zh": "重要", "state_zh": "告警中",
                    "labels": {**base["labels"], "meter": f"E01-ELEC-{k}"}}
                   for k in range(n)]
    m["reason"], m["title"] = "new", "[重要]告警 demand 库车塔河石化炼油有限公司"
    return m


def _notifier(channel: dict[str, Any], settings: Settings | None = None):
    config = parse_alerts({"channels": [channel]})
    return notifier_for(config.channels[0], settings or Settings(), Renderer(Settings().tz))


def test_notifier_registry_names_every_channel_type():
    from parkcarbon.alerts.models import CHANNEL_TYPES

    assert set(NOTIFIERS) == set(CHANNEL_TYPES)


# --- robots -------------------------------------------------------------------------


def test_wecom_markdown_with_mentions_and_errcode(sink: Sink, monkeypatch):
    monkeypatch.setenv("PC_T_WECOM", "k-123")
    n = _notifier({"id": "w", "type": "wecom", "key": {"env": "PC_T_WECOM"},
                   "url": f"{sink.url}/cgi-bin/webhook/send", "mentions": ["wangqing"]})
    assert n.send([_message(), _message()]) == "wecom errcode=0"
    (req,) = sink.requests  # two messages, one digest
    assert parse_qs(urlsplit(req["path"]).query) == {"key": ["k-123"]}
    body = req["json"]
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert "库车塔河石化炼油有限公司 表计 E01-ELEC-0" in content
    assert "当前值 1,500，阈值 1,000" in content and "[确认](http://ack.example/a?i=0)" in content
    assert content.count("### [重要]告警") == 2 and content.endswith("<@wangqing>")
    assert len(content.encode()) <= 4096
    sink.replies = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    with pytest.raises(DeliveryError) as exc:
        n.send([_message()])
    assert exc.value.retry and "errcode=45009 api freq out of limit" in exc.value.detail


def test_dingtalk_signature_verified_by_the_server(sink: Sink, monkeypatch):
    secret = "SECabc+/=123"  # characters that need URL encoding
    monkeypatch.setenv("PC_T_DT_TOKEN", "tok")
    monkeypatch.setenv("PC_T_DT_SECRET", secret)
    n = _notifier({"id": "d", "type": "dingtalk", "access_token": {"env": "PC_T_DT_TOKEN"},
                   "secret": {"env": "PC_T_DT_SECRET"}, "url": f"{sink.url}/robot/send",
                   "at_mobiles": ["13800001111"]})
    assert n.send([_message()]) == "dingtalk errcode=0"
    req = sink.requests[0]
    q = parse_qs(urlsplit(req["path"]).query)  # decodes once, as DingTalk does
    ts = q["timestamp"][0]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert q["sign"] == [expected] and q["access_token"] == ["tok"]
    body = req["json"]
    assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith("[重要]")
    assert body["at"] == {"atMobiles": ["13800001111"], "isAtAll": False}
    assert "@13800001111" in body["markdown"]["text"]
    sink.replies = [(200, {"errcode": 310000, "errmsg": "sign not match"})]
    with pytest.raises(DeliveryError, match="310000"):
        n.send([_message()])


def test_feishu_card_with_signature(sink: Sink, monkeypatch):
    monkeypatch.setenv("PC_T_FS_TOKEN", "hook-1")
    monkeypatch.setenv("PC_T_FS_SECRET", "fs-secret")
    n = _notifier({"id": "f", "type": "feishu", "token": {"env": "PC_T_FS_TOKEN"},
                   "secret": {"env": "PC_T_FS_SECRET"},
                   "url": f"{sink.url}/open-apis/bot/v2/hook"})
    sink.replies = [(200, {"code": 0, "msg": "success"})]
    assert n.send([_message(language="en")]) == "feishu code=0"
    req = sink.requests[0]
    assert req["path"] == "/open-apis/bot/v2/hook/hook-1"
    body = req["json"]
    key = f"{body['timestamp']}\nfs-secret".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "interactive"
    assert "E01 meter E01-ELEC-0: rule demand (parkcarbon channel test), value 1,500 " \
        "against 1,000" in body["card"]["elements"][0]["content"]
    sink.replies = [(200, {"code": 19021, "msg": "sign match fail or timestamp is not within "
                           "one hour from current time"})]
    with pytest.raises(DeliveryError, match="19021"):
        n.send([_message()])


def test_webhook_http_error_is_retryable_and_4xx_is_not(sink: Sink):
    n = _notifier({"id": "h", "type": "webhook", "url": f"{sink.url}/hook"})
    sink.replies = [(503, {"error": "down"})]
    with pytest.raises(DeliveryError) as exc:
        n.send([_message()])
    assert exc.value.retry and "HTTP 503" in exc.value.detail
    sink.replies = [(400, {"error": "bad"})]
    with pytest.raises(DeliveryError) as exc:
        n.send([_message()])
    assert not exc.value.retry


# --- e-mail ---------------------------------------------------------------------------


class _Smtp:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server(tmp_path: Path):
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from support import free_port

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    handler = _Smtp()

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"smtp-pass"
        if ok:
            handler.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=ctx,
                            require_starttls=True, authenticator=auth, auth_required=True)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_email_starttls_login_text_and_html_in_chinese(smtp_server, monkeypatch):
    handler, port = smtp_server
    monkeypatch.setenv("PC_T_SMTP", "smtp-pass")
    n = _notifier({"id": "m", "type": "email", "host": "127.0.0.1", "port": port,
                   "security": "starttls", "verify_tls": False, "username": "alerts",
                   "password": {"env": "PC_T_SMTP"}, "from": "园区 <alerts@park.example>",
                   "to": ["ops@e01.example"]})
    assert "accepted 1 message" in n.send([_message()])
    (msg,) = handler.messages
    assert handler.logins == [("alerts", "smtp-pass")]
    from email.header import decode_header, make_header

    assert str(make_header(decode_header(msg["Subject"]))) == \
        "[重要]告警 demand 库车塔河石化炼油有限公司"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode("utf-8")
             for p in msg.walk() if not p.is_multipart()}
    assert "当前值 1,500，阈值 1,000" in parts["text/plain"]
    assert '<a href="http://ack.example/a?i=0">确认</a>' in parts["text/html"]


class _Replying(_Smtp):
    """Answers DATA with the queued replies first, then accepts."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies
        self.tries = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tries += 1
        if self.replies:
            return self.replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize(("reply", "retry"), [("550 5.1.1 Mailbox unavailable", False),
                                              ("554 5.7.1 Relay denied", False),
                                              ("451 4.3.0 Try again later", True),
                                              ("421 4.7.0 Too busy", True)])
def test_email_5xx_is_permanent_and_4xx_is_retried(reply: str, retry: bool):
    from aiosmtpd.controller import Controller

    from support import free_port

    handler = _Replying([reply])
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        n = _notifier({"id": "m", "type": "email", "host": "127.0.0.1", "port": port,
                       "security": "none", "from": "a@park.example", "to": ["b@e01.example"]})
        with pytest.raises(DeliveryError) as exc:
            n.send([_message()])
        assert exc.value.retry is retry and f"SMTP {reply[:3]}" in exc.value.detail
        assert "accepted 1 message" in n.send([_message()])  # the next try goes through
        assert handler.tries == 2 and len(handler.messages) == 1
    finally:
        controller.stop()


def test_email_server_down_is_a_retryable_failure():
    from support import free_port

    n = _notifier({"id": "m", "type": "email", "host": "127.0.0.1", "port": free_port(),
                   "security": "none", "from": "a@park.example", "to": ["b@e01.example"]})
    with pytest.raises(DeliveryError) as exc:
        n.send([_message()])
    assert exc.value.retry and "Connection refused" in exc.value.detail


# --- MQTT -----------------------------------------------------------------------------


def test_mqtt_qos1_to_the_enterprise_topic_end_to_end(broker, settings, registry):
    import paho.mqtt.client as mqtt

    got: list[tuple[str, int, dict[str, Any]]] = []
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="alerts-plant")
    client.username_pw_set(broker.username, broker.password)
    client.on_message = lambda c, u, m: got.append((m.topic, m.qos, json.loads(m.payload)))
    client.on_subscribe = lambda *a: ready.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.subscribe("park/alerts/#", qos=1)
    assert ready.wait(10)
    try:
        s = broker.settings(database_url=settings.database_url)
        doc = base_config("http://127.0.0.1:9")
        doc["channels"] = [{"id": "e01-plant", "type": "mqtt", "enterprise": "E01"}]
        doc["recipients"] = [{"id": "e01-plant", "enterprise": "E01",
                              "channels": ["e01-plant"]}]
        doc["routes"] = [{"to": "enterprise"}]
        config = parse_alerts(doc, "a", registry)
        dsn = settings.database_url.get_secret_value()
        put_usage(dsn, "E01-ELEC-1", [(ts, 500.0) for ts in slots(T0, 1)])
        r = run_cycle(s, registry, config, T0)
        assert r.delivery.sent == 1
        for _ in range(100):
            if got:
                break
            threading.Event().wait(0.05)
        ((topic, qos, body),) = got
        assert topic == "park/alerts/E01" and qos == 1
        assert body["version"] == "4" and body["alerts"][0]["labels"]["meter"] == "E01-ELEC-1"
        with psycopg.connect(dsn) as conn:
            (detail,) = conn.execute("SELECT detail FROM alert_delivery_attempts").fetchone()
        assert detail == "published QoS 1 to park/alerts/E01"
        # broker down: the attempt fails and is retried later, nothing lost
        broker.stop()
        put_usage(dsn, "E01-ELEC-1", [(ts, 100.0) for ts in slots(T0 + timedelta(minutes=15), 1)])
        r = run_cycle(s, registry, config, T0 + timedelta(minutes=15))
        assert r.delivery.failed == 1
        broker.start()
    finally:
        client.loop_stop()
        client.disconnect()
