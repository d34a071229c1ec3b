"""Acknowledge links: signed, expiring, served by `parkcarbon run`'s HTTP endpoint; a
forged or expired link is refused and logged; a GET never acknowledges."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import psycopg
import pytest
from alerts_support import T0, base_config, put_usage, slots

from parkcarbon.alerts.ack import AckHandler, sign_link
from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.http import HealthServer


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(url: str, form: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def endpoint(settings, registry, sink, monkeypatch):
    monkeypatch.setenv("PC_T_ACK", "s3cret-ack-key")
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    doc["ack"] = {"secret": {"env": "PC_T_ACK"}, "base_url": "http://placeholder"}
    config = parse_alerts(doc, "a", registry)
    clock = {"now": T0}
    handler = AckHandler(settings, config, clock=lambda: clock["now"])
    server = HealthServer(lambda: {"healthy": True}, lambda: "", 0, host="127.0.0.1",
                          routes={"/alerts/ack": handler})
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    doc["ack"]["base_url"] = base
    config = parse_alerts(doc, "a", registry)
    try:
        yield config, base, clock
    finally:
        server.stop()


def test_link_in_the_message_acknowledges_after_a_confirming_post(
        endpoint, settings, registry, sink, caplog):
    config, base, clock = endpoint
    dsn = settings.database_url.get_secret_value()
    put_usage(dsn, "E01-ELEC-1", [(ts, 500.0) for ts in slots(T0, 2)])
    run_cycle(settings, registry, config, T0)
    (req,) = sink.requests
    link = req["json"]["alerts"][0]["annotations"]["ack_url"]
    assert link.startswith(f"{base}/alerts/ack?i=")
    status, page = _get(link)
    assert status == 200 and "<form method=post>" in page
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT ack_by FROM alert_instances").fetchone() == (None,)
    query = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
    status, page = _post(link, {**query, "by": "张三", "for": "2h", "comment": "处理中"})
    assert status == 200 and "已确认" in page
    with psycopg.connect(dsn) as conn:
        by, until, comment = conn.execute(
            "SELECT ack_by, ack_until, ack_comment FROM alert_instances").fetchone()
    assert by == "张三 (link)" and until == T0 + timedelta(hours=2) and comment == "处理中"
    # forged: another alert id under the same signature
    forged = link.replace(f"i={query['i']}", f"i={int(query['i']) + 1}")
    with caplog.at_level(logging.WARNING, logger="parkcarbon.alerts.ack"):
        status, _ = _get(forged)
    assert status == 403
    assert "forged or altered acknowledge link" in caplog.text
    # expired: the clock passes the link's expiry (24 h)
    clock["now"] = T0 + timedelta(hours=25)
    status, _ = _post(link, {**query, "by": "张三"})
    assert status == 410
    assert "expired acknowledge link" in caplog.text


def test_a_link_for_an_old_episode_is_refused(endpoint, settings, registry):
    config, base, _ = endpoint
    dsn = settings.database_url.get_secret_value()
    put_usage(dsn, "E01-ELEC-1", [(ts, 500.0) for ts in slots(T0, 2)])
    run_cycle(settings, registry, config, T0)
    with psycopg.connect(dsn) as conn:
        (iid,) = conn.execute("SELECT id FROM alert_instances").fetchone()
    link = sign_link(base, "s3cret-ack-key", iid, 7, T0 + timedelta(hours=1))
    query = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
    status, page = _post(link, {**query, "by": "x"})
    assert status == 409 and "nothing to acknowledge" in page


def test_run_mounts_the_route_only_with_a_secret(settings, tmp_path, monkeypatch):
    import yaml

    from parkcarbon.alerts.jobs import http_routes

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"ack": {"secret": {"env": "PC_T_ACK2"}}}))
    s = settings.model_copy(update={"alerts_file": path})
    monkeypatch.setenv("PC_T_ACK2", "k")
    assert list(http_routes(s)) == ["/alerts/ack"]
    path.write_text("{}")
    assert http_routes(s) == {}


def test_parkcarbon_run_serves_the_ack_route(settings, registry, tmp_path, monkeypatch):
    import yaml

    from parkcarbon.runtime.supervisor import Supervisor
    from support import free_port

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"ack": {"secret": {"env": "PC_T_ACK3"}}}))
    monkeypatch.setenv("PC_T_ACK3", "k3")
    s = settings.model_copy(update={"alerts_file": path, "metrics_host": "127.0.0.1"})
    sup = Supervisor(s, registry, parts=("scheduler",), jobs=[], health_port=free_port())
    sup.start()
    try:
        base = f"http://127.0.0.1:{sup.health_port}"
        good = sign_link(base, "k3", 1, 1, T0 + timedelta(days=3650))
        status, page = _get(good)
        assert status == 200 and "<form method=post>" in page
        status, _ = _get(good.replace("s=", "s=0"))
        assert status == 403
        assert _get(f"{base}/healthz")[0] == 200
    finally:
        sup.stop()


def _raw_post(port: int, length: str, body: bytes = b"") -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("POST", "/alerts/ack")
        conn.putheader("Content-Length", length)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_bad_requests_get_a_plain_answer_and_the_server_keeps_serving(settings, caplog):
    def broken(method: str, target: str, body: bytes, client: str) -> tuple[int, str, bytes]:
        raise RuntimeError("route bug")

    server = HealthServer(lambda: {"healthy": True}, lambda: "", 0, host="127.0.0.1",
                          routes={"/alerts/ack": broken})
    server.start()
    try:
        status, text = _raw_post(server.port, "twelve")
        assert status == 400 and "bad Content-Length 'twelve'" in text
        status, text = _raw_post(server.port, "-5")
        assert status == 400
        status, text = _raw_post(server.port, str(10**9))
        assert status == 413 and "over the 65536-byte limit" in text
        with caplog.at_level(logging.ERROR, logger="parkcarbon.http"):
            status, text = _raw_post(server.port, "3", b"a=b")
        assert status == 500 and "Traceback" not in text
        assert "HTTP route /alerts/ack failed" in caplog.text
        assert _get(f"http://127.0.0.1:{server.port}/healthz")[0] == 200
    finally:
        server.stop()


def test_acknowledge_with_the_database_down_answers_503_and_records_nothing(
        settings, registry, monkeypatch, caplog):
    from support import free_port

    monkeypatch.setenv("PC_T_ACK4", "k4")
    doc = {"ack": {"secret": {"env": "PC_T_ACK4"}, "base_url": "http://x"}}
    config = parse_alerts(doc, "a", registry)
    down = settings.model_copy(
        update={"database_url": f"postgresql://127.0.0.1:{free_port()}/nothing"})
    handler = AckHandler(down, config, clock=lambda: T0)
    link = sign_link("http://x", "k4", 1, 1, T0 + timedelta(hours=1))
    query = link.split("?", 1)[1]
    with caplog.at_level(logging.ERROR, logger="parkcarbon.alerts.ack"):
        status, _ctype, body = handler("POST", f"/alerts/ack?{query}", b"by=ops", "127.0.0.1")
    assert status == 503 and "Try again later" in body.decode()
    assert "acknowledge of alert 1 not recorded: database: cannot connect" in caplog.text
