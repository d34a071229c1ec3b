"""E-mail delivery of the monthly reports against a real SMTP server (aiosmtpd): the park
report reaches the park officers and each enterprise report its own contacts, with the
files attached byte for byte and a Chinese subject; a delivered report is never sent
twice; a 550 is permanent (not retried, shown by ``report list``), a 451 or an
unreachable server is retried."""

from __future__ import annotations

import json
from datetime import datetime
from email.header import decode_header, make_header
from pathlib import Path

import yaml
from report_support import SmtpSink, alerts_doc
from test_reports import PERIOD, TZ, cli, put_readings, settings_for

from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.carbon.current import bring_up_to_date
from parkcarbon.db import connect
from parkcarbon.periods import parse_period
from parkcarbon.registry import load_registry
from parkcarbon.reports.delivery import deliver_reports
from parkcarbon.reports.generate import generate_reports
from parkcarbon.reports.jobs import email_retry_job
from parkcarbon.scheduling import JobContext
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY

PARK_NAME = "库车经济技术开发区"
OFFICERS = ["chief@kuqa-etdz.example.cn", "deputy@kuqa-etdz.example.cn"]


def subject_of(msg: object) -> str:
    return str(make_header(decode_header(msg["Subject"])))  # type: ignore[index]


def attachments(msg: object) -> dict[str, tuple[str, bytes]]:
    return {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True))
            for p in msg.iter_attachments()}  # type: ignore[attr-defined]


def test_send_mails_each_report_to_its_own_recipients_once(
    migrated_dsn: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    put_readings(migrated_dsn, datetime(2026, 1, 1, tzinfo=TZ), 96)
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(yaml.safe_dump(alerts_doc(smtp_sink.port), allow_unicode=True),
                      encoding="utf-8")
    env = {"PARKCARBON_ALERTS_FILE": str(alerts),
           "PARKCARBON_REPORT_PARK_EMAILS": ",".join(OFFICERS)}
    args = ("report", "--period", PERIOD, "--all-enterprises", "--formats", "pdf,xlsx",
            "--out", str(tmp_path), "--send", "--format", "json")
    out = cli(*args, dsn=migrated_dsn, extra=env)
    assert out.returncode == 0, out.stderr
    rows = {r["subject"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["PARK"]["email"] == "park-mail: sent"
    assert rows["E01"]["email"] == "e01-mail: sent" and rows["E03"]["email"] == ""
    # three messages: the park officers (the setting, not the channel's `to`), E01, E02
    assert sorted(sorted(e) for e in smtp_sink.envelopes) == sorted(
        [OFFICERS, ["ops@tahe-refining.example.cn"], ["energy@e02.example.cn"]])
    (park,) = smtp_sink.to(OFFICERS[0])
    assert subject_of(park) == f"{PARK_NAME} {PERIOD} 月度碳排放报告（第 1 版）"
    raw_subject = next(line for line in smtp_sink.raw[smtp_sink.messages.index(park)]
                       .split(b"\r\n") if line.startswith(b"Subject:"))
    assert raw_subject.isascii() and b"=?utf-8?" in raw_subject  # RFC 2047, not raw UTF-8
    files = {Path(f).name: Path(f) for f in rows["PARK"]["files"].split()}
    got = attachments(park)
    assert set(got) == set(files) == {f"carbon-report-{PERIOD}-PARK-v1.zh.pdf",
                                      f"carbon-report-{PERIOD}-PARK-v1.zh.xlsx"}
    for name, (ctype, data) in got.items():
        assert data == files[name].read_bytes()
        assert ctype == ("application/pdf" if name.endswith(".pdf") else
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "数据指纹" in park.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (e01,) = smtp_sink.to("ops@tahe-refining.example.cn")
    assert set(attachments(e01)) == {f"carbon-report-{PERIOD}-E01-v1.zh.pdf",
                                     f"carbon-report-{PERIOD}-E01-v1.zh.xlsx"}
    assert subject_of(e01).endswith(f"{PERIOD} 月度碳排放报告（第 1 版）")
    # the same version again: nothing is sent twice
    again = cli(*args, dsn=migrated_dsn, extra=env)
    assert again.returncode == 0, again.stderr
    assert len(smtp_sink.messages) == 3
    assert json.loads(again.stdout)["rows"][0]["email"] == "park-mail: skipped (sent)"
    listed = cli("report", "list", "--period", PERIOD, "--format", "json", dsn=migrated_dsn)
    by = {r["subject"]: r for r in json.loads(listed.stdout)}
    assert by["PARK"]["email"] == "park-mail zh: sent"


def _settings(dsn: str, out: Path) -> Settings:
    return settings_for(dsn, out)


def test_550_is_permanent_and_451_is_retried(
    migrated_dsn: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    from support import free_port

    put_readings(migrated_dsn, datetime(2026, 1, 1, tzinfo=TZ), 96)
    settings = _settings(migrated_dsn, tmp_path)
    down = free_port()  # E02's server: nobody listens
    doc = alerts_doc(smtp_sink.port)
    doc["channels"][2]["port"] = down  # type: ignore[index]
    config = parse_alerts(doc)
    waits: list[float] = []
    with connect(migrated_dsn) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        written = generate_reports(conn, settings, parse_period(PERIOD), [None, "E01", "E02"])
        # park: 451 then accepted, after one wait; E01: 550, given up at once
        smtp_sink.replies = ["451 4.3.0 Try again later", "", "550 5.1.1 Mailbox unavailable"]
        first = deliver_reports(conn, settings, config, written, lang="zh",
                                sleep=waits.append)
        by = {d.subject: d for d in first}
        assert (by["PARK"].status, by["PARK"].attempts) == ("sent", 2)
        assert (by["E01"].status, by["E01"].attempts) == ("failed", 1)
        assert "550" in by["E01"].detail
        assert (by["E02"].status, by["E02"].attempts) == ("retry", 3)
        assert "Connection refused" in by["E02"].detail
        assert waits == [5.0, 5.0, 10.0]  # the 451 once, the dead server twice
        assert smtp_sink.attempts == 3 and len(smtp_sink.messages) == 1
        # the next run: the 550 is not tried again, the sent one is not sent again
        config = parse_alerts(alerts_doc(smtp_sink.port))
        second = {d.subject: d for d in deliver_reports(conn, settings, config, written[:2],
                                                        lang="zh", sleep=waits.append)}
        assert second["E01"].status == "skipped" and second["E01"].detail == "failed"
        assert second["PARK"].status == "skipped" and second["PARK"].detail == "sent"
        assert smtp_sink.attempts == 3
    # the hourly retry job takes the one left to retry (its server is up now)
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(json.dumps(alerts_doc(smtp_sink.port)), encoding="utf-8")
    ctx = JobContext(settings.model_copy(update={"alerts_file": alerts}),
                     load_registry(EXAMPLE_REGISTRY), datetime.now(TZ))
    (retried,) = email_retry_job(ctx)
    assert (retried.subject, retried.status, retried.attempts) == ("E02", "sent", 4)
    assert smtp_sink.attempts == 4 and len(smtp_sink.messages) == 2
    assert set(attachments(smtp_sink.messages[-1])) == {
        f"carbon-report-{PERIOD}-E02-v1.zh.{x}" for x in ("pdf", "xlsx", "csv")}
    assert email_retry_job(ctx) == []  # nothing left
    listed = cli("report", "list", "--period", PERIOD, "--format", "json", dsn=migrated_dsn)
    e01 = next(r for r in json.loads(listed.stdout) if r["subject"] == "E01")
    assert e01["email"].startswith("e01-mail zh: failed (1 attempts: SMTP 550")
    # the officer fixed the address: an explicit send (report --send) tries it again,
    # and still never sends the park's twice
    with connect(migrated_dsn) as conn:
        third = {d.subject: d for d in deliver_reports(
            conn, settings, parse_alerts(alerts_doc(smtp_sink.port)), written[:2],
            lang="zh", sleep=waits.append, retry_failed=True)}
    assert (third["E01"].status, third["E01"].attempts) == ("sent", 2)
    assert third["PARK"].status == "skipped"
    assert len(smtp_sink.messages) == 3


def test_send_with_a_permanent_failure_exits_1_and_says_so(
    migrated_dsn: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    put_readings(migrated_dsn, datetime(2026, 1, 1, tzinfo=TZ), 96)
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(yaml.safe_dump(alerts_doc(smtp_sink.port), allow_unicode=True),
                      encoding="utf-8")
    smtp_sink.replies = ["554 5.7.1 Relay denied"]
    out = cli("report", "--period", PERIOD, "--formats", "csv", "--out", str(tmp_path),
              "--send", dsn=migrated_dsn, extra={"PARKCARBON_ALERTS_FILE": str(alerts)})
    assert out.returncode == 1
    assert "1 report e-mail(s) not delivered" in out.stderr
    assert "Traceback" not in out.stderr and smtp_sink.attempts == 1
