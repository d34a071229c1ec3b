"""The `parkcarbon alerts` commands against PostgreSQL: evaluate --at, list, history,
ack, silence add/list/expire, test --channel, deliveries, each with --format."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
import yaml
from alerts_support import T0, base_config, put_demand_readings
from click.testing import CliRunner

from parkcarbon.alerts.errors import AlertsUsageError
from parkcarbon.cli import cli


@pytest.fixture
def run(settings, sink, tmp_path):
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    env = {"PARKCARBON_DATABASE_URL": settings.database_url.get_secret_value(),
           "PARKCARBON_ALERTS_FILE": str(path)}

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=not ok)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_evaluate_list_ack_history_deliveries(run, settings, sink):
    dsn = settings.database_url.get_secret_value()
    put_demand_readings(dsn, "E01-ELEC-1", T0 - timedelta(minutes=30), [2000.0, 2000.0])
    out = json.loads(run("alerts", "evaluate", "--at", "2026-10-12T10:00",
                         "--format", "json").stdout)
    assert out["at"] == "2026-10-12T02:00:00+00:00"
    assert out["changes"] == [{"rule": "demand", "subject": "E01-ELEC-1", "from": "normal",
                               "to": "firing", "value": 2000.0}]
    assert out["sent"] == 1 and len(sink.requests) == 1
    rows = json.loads(run("alerts", "list", "--format", "json").stdout)
    assert [(r["rule"], r["subject"], r["state"]) for r in rows] == \
        [("demand", "E01-ELEC-1", "firing")]
    assert json.loads(run("alerts", "list", "--enterprise", "E02", "--format", "json").stdout) \
        == []
    alert_id = str(rows[0]["id"])
    out = run("alerts", "ack", alert_id, "--by", "王工", "--for", "2h", "--comment", "检修").stdout
    assert f"alert {alert_id} (demand E01-ELEC-1) acknowledged by 王工" in out
    table = run("alerts", "list").stdout
    assert "王工" in table and "firing" in table
    hist = json.loads(run("alerts", "history", "--format", "json").stdout)
    assert hist[0]["note"].startswith("acknowledged by 王工 until ")
    assert (hist[1]["from"], hist[1]["to"]) == ("normal", "firing")
    csv_out = run("alerts", "deliveries", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("id,created_at,recipient,channel")
    deliveries = json.loads(run("alerts", "deliveries", "--attempts", "--format", "json").stdout)
    assert deliveries[0]["status"] == "sent" and deliveries[0]["tries"][0]["ok"] is True
    assert deliveries[0]["tries"][0]["detail"] == "HTTP 200"


def test_silences_from_the_command_line(run, settings):
    out = json.loads(run("alerts", "silence", "add", "--match", "enterprise=E01",
                         "--match", "rule=~dem.*", "--for", "2h", "--by", "ops",
                         "--reason", "检修", "--format", "json").stdout)
    sid = out["id"]
    assert out["matchers"] == [{"label": "enterprise", "op": "=", "value": "E01"},
                               {"label": "rule", "op": "=~", "value": "dem.*"}]
    listed = json.loads(run("alerts", "silence", "list", "--format", "json").stdout)
    assert [s["id"] for s in listed] == [sid] and listed[0]["enterprise"] == "E01"
    assert "silence" in run("alerts", "silence", "expire", str(sid)).stdout
    assert json.loads(run("alerts", "silence", "list", "--format", "json").stdout) == []
    everything = run("alerts", "silence", "list", "--all", "--format", "json").stdout
    assert len(json.loads(everything)) == 1
    bad = run("alerts", "silence", "add", "--match", "enterprise", "--for", "1h", "--by", "x",
              "--reason", "y", ok=False)
    assert isinstance(bad.exception, AlertsUsageError)
    assert "is not label=value" in str(bad.exception)
    bad = run("alerts", "silence", "add", "--match", "rule=x", "--for", "soon", "--by", "x",
              "--reason", "y", ok=False)
    assert "--for: 'soon' is not a duration" in str(bad.exception)


def test_ack_of_an_alert_that_is_not_active_is_one_clear_error(run, settings):
    dsn = settings.database_url.get_secret_value()
    put_demand_readings(dsn, "E01-ELEC-1", T0 - timedelta(minutes=30), [2000.0, 2000.0, 20.0])
    run("alerts", "evaluate", "--at", T0.isoformat(), "--no-send")
    run("alerts", "evaluate", "--at", (T0 + timedelta(minutes=15)).isoformat(), "--no-send")
    with psycopg.connect(dsn) as conn:
        (iid,) = conn.execute("SELECT id FROM alert_instances").fetchone()
    bad = run("alerts", "ack", str(iid), "--by", "x", ok=False)
    assert isinstance(bad.exception, AlertsUsageError)
    assert str(bad.exception) == f"alert {iid} (demand E01-ELEC-1) is normal: nothing to " \
        "acknowledge"
    bad = run("alerts", "ack", "999999", "--by", "x", ok=False)
    assert str(bad.exception) == "no alert with id 999999"
    bad = run("alerts", "evaluate", "--at", "yesterday", ok=False)
    assert "--at 'yesterday' is not a time" in str(bad.exception)


def test_test_channel_sends_now_and_reports_the_provider(run, sink):
    out = json.loads(run("alerts", "test", "--channel", "e01-hook", "--format", "json").stdout)
    assert out == {"channel": "e01-hook", "ok": True, "detail": "HTTP 200"}
    body = sink.requests[0]["json"]
    assert body["title"] == "测试 parkcarbon 告警通道 e01-hook"
    assert body["alerts"][0]["labels"]["enterprise"] == "E01"
    sink.replies = [(500, {})]
    bad = run("alerts", "test", "--channel", "e01-hook", ok=False)
    assert "channel e01-hook: HTTP 500" in str(bad.exception)
    bad = run("alerts", "test", "--channel", "nope", ok=False)
    assert "--channel 'nope': no such channel" in str(bad.exception)


def test_the_minute_job_of_parkcarbon_run(run, settings, sink):
    dsn = settings.database_url.get_secret_value()
    put_demand_readings(dsn, "E01-ELEC-1", T0 - timedelta(minutes=30), [2000.0, 2000.0])
    jobs = run("run", "--list-jobs").stdout
    assert "alerts_cycle" in jobs and "every 60 s" in jobs
    # the job evaluates at the supervisor's clock (now), the one rule `demand` of this
    # file: one rule, two meters, nothing in the window ending now
    out = json.loads(run("run", "--job", "alerts_cycle", "--format", "json").stdout)
    assert out["job"] == "alerts_cycle"
    assert "'evaluated': True, 'rules': 1, 'subjects': 2" in out["result"]
