"""Monthly carbon reports against the real database: the PDF holds the figures
``parkcarbon emissions`` prints, the XLSX equals the accounting figures, the same
inputs give the same bytes, a restatement gives version 2 with its change page.

Readings go into ``readings`` as ingest stores them (cumulative registers every 15
minutes); the report command derives usage and refreshes the figures itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest
from pypdf import PdfReader
from report_support import SmtpSink, alerts_doc

from parkcarbon.db import connect
from parkcarbon.settings import Settings, load_settings
from support import ROOT

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2026-01"
DAYS = 3
# No economics file: the example one is the accounting engineer's to validate, and the
# report's figures here are tCO2 and tce (indicators print '-' without value added).
NO_ECONOMICS = ROOT / "config" / "no-economics-in-report-tests.yaml"


def put_readings(dsn: str, start: datetime, slots: int) -> None:
    """Every cumulative register (grid import and PV) read every 15 minutes."""
    with psycopg.connect(dsn) as conn:
        ids = [
            r[0] for r in conn.execute(
                "SELECT id FROM meters WHERE counter_type = 'cumulative' "
                "AND role IN ('grid_import', 'onsite_pv') ORDER BY id"
            ).fetchall()
        ]
        for n, meter in enumerate(ids):
            conn.execute(
                "INSERT INTO readings (meter_id, ts, value) "
                "SELECT %s, %s::timestamptz + g * interval '15 minutes', "
                "       1000 + g * %s * (1 + %s %% 3) "
                "FROM generate_series(0, %s) g ON CONFLICT DO NOTHING",
                (meter, start, 1.0, n, slots),
            )


def late_readings(dsn: str, meter: str) -> None:
    """Corrected readings arrive late: the register ran 1.5 times as fast on 2 January
    (a complete day already accounted), the same pace before and after."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE readings r SET received_at = now(), value = r.value + 0.5 * least(96, "
            "  extract(epoch FROM r.ts - '2026-01-02 00:00+08') / 900) * "
            "  (SELECT (r2.value - r1.value) FROM readings r1 JOIN readings r2 "
            "   ON r2.meter_id = r1.meter_id AND r2.ts = r1.ts + interval '15 minutes' "
            "   WHERE r1.meter_id = r.meter_id ORDER BY r1.ts LIMIT 1) "
            "WHERE r.meter_id = %s AND r.ts > '2026-01-02 00:00+08'",
            (meter,),
        )


def cli(*args: str, dsn: str, extra: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(PARKCARBON_DATABASE_URL=dsn, PARKCARBON_LOG_LEVEL="WARNING",
               PARKCARBON_TARGETS_FILE=str(ROOT / "config" / "targets.yaml"),
               PARKCARBON_ECONOMICS_FILE=str(NO_ECONOMICS),
               **(extra or {}))
    return subprocess.run([sys.executable, "-m", "parkcarbon", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def settings_for(dsn: str, out: Path) -> Settings:
    return load_settings(database_url=dsn, targets_file=ROOT / "config" / "targets.yaml",
                         economics_file=NO_ECONOMICS, report_dir=out)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def fonts_of(path: Path) -> list[tuple[str, bool]]:
    """(font name, embedded?) of every font on every page, descendants included."""
    found = []
    for page in PdfReader(path).pages:
        fonts = page["/Resources"].get_object().get("/Font")
        if fonts is None:
            continue
        for ref in fonts.get_object().values():
            font = ref.get_object()
            descs = [font] + [d.get_object() for d in font.get("/DescendantFonts", [])]
            embedded = any(
                any(k in d.get("/FontDescriptor", {}).get_object()
                    for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descs if "/FontDescriptor" in d
            )
            found.append((str(font["/BaseFont"]), embedded))
    return found


@pytest.fixture
def january(migrated_dsn: str) -> str:
    """Three days of January 2026 for every cumulative meter of the example park."""
    put_readings(migrated_dsn, datetime(2026, 1, 1, tzinfo=TZ), DAYS * 96)
    return migrated_dsn


def test_pdf_holds_the_park_figures_emissions_prints(january: str, tmp_path: Path) -> None:
    out = cli("report", "--period", PERIOD, "--out", str(tmp_path), "--format", "json",
              dsn=january)
    assert out.returncode == 0, out.stderr
    written = json.loads(out.stdout)["rows"]
    assert [w["subject"] for w in written] == ["PARK"]
    files = [Path(f) for f in written[0]["files"].split()]
    assert sorted(f.suffix for f in files) == [".csv", ".pdf", ".xlsx"]
    pdf = next(f for f in files if f.suffix == ".pdf")
    assert pdf.name == "carbon-report-2026-01-PARK-v1.zh.pdf"

    em = cli("emissions", "--period", PERIOD, "--format", "json", dsn=january)
    total = json.loads(em.stdout)["total"]
    assert total["scope12_co2_t"] > 0 and total["tce"] > 0
    text = pdf_text(pdf)
    # the PDF prints tCO2 and tce at 2 decimals with thousands separators
    assert f"{total['scope12_co2_t']:,.2f}" in text
    assert f"{total['tce']:,.2f}" in text
    assert f"{total['scope1_co2_t']:,.2f}" in text
    # process emissions (E12's clinker, config/production.yaml) are their own line
    assert total["scope1_process_co2_t"] > 0
    assert f"{total['scope1_process_co2_t']:,.2f}" in text and "工业生产过程" in text
    for phrase in ("库车经济技术开发区", "月度碳排放报告", "范围一+二（基于位置）", "数据回执",
                   "GB/T 2589", "本月告警"):
        assert phrase in text
    # the coverage the year to date and forecast rest on, in the report's language
    assert "天中 3 天有数据" in text and "days elapsed" not in text
    assert "\x00" not in text and "\ufffd" not in text  # no missing glyphs (tofu)
    fonts = fonts_of(pdf)
    assert fonts and all(embedded for _, embedded in fonts), fonts
    assert any("NotoSansCJK" in name for name, _ in fonts)
    # page 1 as an image, as a reader sees it
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=60)
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    # CSV: UTF-8 with a BOM, the park's figure at full precision
    csv_bytes = next(f for f in files if f.suffix == ".csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    assert "范围一+二（基于位置）" in csv_bytes.decode("utf-8-sig")


def test_xlsx_equals_the_accounting_figures_for_every_enterprise(
    january: str, tmp_path: Path
) -> None:
    from parkcarbon.carbon.accounting import emissions
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.periods import parse_period
    from parkcarbon.reports.generate import generate_reports

    settings = settings_for(january, tmp_path)
    with connect(january) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        [park] = generate_reports(conn, settings, parse_period(PERIOD), [None],
                                  formats=("xlsx",))
        df = emissions(conn, period=PERIOD)
    wb = openpyxl.load_workbook(park.files[0])
    assert wb.sheetnames[:3] == ["封面", "摘要", "能源"]
    ws = wb["排名"]
    assert ws.freeze_panes == "A3"  # title row, then the frozen header row
    header = [c.value for c in ws[2]]
    assert header[3:8] == ["范围一 (tCO2)", "范围二 (tCO2)", "范围一+二 (tCO2)",
                           "范围一+二 市场法 (tCO2)", "综合能耗 (tce)"]
    got = {}
    for row in ws.iter_rows(min_row=3):
        if isinstance(row[0].value, int):
            got[row[1].value] = row
    assert len(df) == 14 and set(got) == set(df["enterprise_id"])
    for r in df.itertuples():
        cells = got[r.enterprise_id]
        for cell, expected in zip(cells[3:6], (r.scope1_co2_t, r.scope2_co2_t,
                                               r.scope12_co2_t), strict=True):
            assert isinstance(cell.value, float | int)
            assert cell.value == pytest.approx(expected, rel=1e-14, abs=1e-12)
            assert cell.number_format == "#,##0.00"
        assert cells[7].value == pytest.approx(r.tce, rel=1e-14)
        share = cells[8]
        assert share.number_format == "0.0%"  # a percentage as a number, not text
        assert share.value == pytest.approx(r.scope12_co2_t / df["scope12_co2_t"].sum())
    summary = wb["摘要"]
    values = {row[0].value: row[1].value for row in summary.iter_rows(min_row=3) if row[0].value}
    assert values["范围一+二（基于位置）"] == pytest.approx(df["scope12_co2_t"].sum(), rel=1e-12)
    assert values["综合能耗"] == pytest.approx(df["tce"].sum(), rel=1e-12)


def test_the_same_inputs_give_byte_identical_files(january: str, tmp_path: Path) -> None:
    first = cli("report", "--period", PERIOD, "--out", str(tmp_path / "a"), "--format", "json",
                dsn=january)
    assert first.returncode == 0, first.stderr
    again = cli("report", "--period", PERIOD, "--out", str(tmp_path / "b"), "--format", "json",
                dsn=january)
    a = [Path(f) for f in json.loads(first.stdout)["rows"][0]["files"].split()]
    b = [Path(f) for f in json.loads(again.stdout)["rows"][0]["files"].split()]
    assert [f.name for f in a] == [f.name for f in b]
    assert [sha(f) for f in a] == [sha(f) for f in b]
    assert json.loads(again.stdout)["rows"][0]["status"] == "unchanged"
    listed = json.loads(cli("report", "list", "--format", "json", dsn=january).stdout)
    assert [(r["subject"], r["version"]) for r in listed] == [("PARK", 1)]


def test_late_data_gives_version_2_with_the_change_page(january: str, tmp_path: Path) -> None:
    args = ("report", "--period", PERIOD, "--enterprise", "E03", "--out", str(tmp_path),
            "--format", "json")
    v1 = cli(*args, dsn=january)
    assert v1.returncode == 0, v1.stderr
    [v1_pdf] = [Path(f) for f in json.loads(v1.stdout)["rows"][0]["files"].split()
                if f.endswith(".pdf")]
    v1_hash = sha(v1_pdf)
    with psycopg.connect(january) as conn:
        old = conn.execute(
            "SELECT sum(co2_location_t) FROM emissions_daily WHERE enterprise_id = 'E03' "
            "AND scope = '2' AND day < '2026-02-01'"
        ).fetchone()[0]
    late_readings(january, "E03-ELEC-1")
    v2 = cli(*args, dsn=january)
    assert v2.returncode == 0, v2.stderr
    row = json.loads(v2.stdout)["rows"][0]
    assert (row["version"], row["status"]) == (2, "new version")
    v2_pdf = next(Path(f) for f in row["files"].split() if f.endswith(".pdf"))
    assert v2_pdf.name == "carbon-report-2026-01-E03-v2.zh.pdf"
    assert sha(v1_pdf) == v1_hash  # version 1 is kept as it was
    with psycopg.connect(january) as conn:
        new = conn.execute(
            "SELECT sum(co2_location_t) FROM emissions_daily WHERE enterprise_id = 'E03' "
            "AND scope = '2' AND day < '2026-02-01'"
        ).fetchone()[0]
        changes = conn.execute(
            "SELECT changes FROM reports WHERE enterprise_id = 'E03' AND version = 2"
        ).fetchone()[0]
    assert new > old
    by_metric = {c["metric"]: c for c in changes}
    assert by_metric["scope2_co2_t"]["old"] == pytest.approx(old)
    assert by_metric["scope2_co2_t"]["new"] == pytest.approx(new)
    assert by_metric["scope2_co2_t"]["causes"] == ["late_data"]
    assert "scope1_co2_t" not in by_metric  # E03's gas did not change
    text = pdf_text(v2_pdf)
    assert "版本变更" in text and "本版本替代第 1 版" in text and "迟到数据" in text
    assert f"{old:,.3f}" in text and f"{new:,.3f}" in text and f"{new - old:,.3f}" in text
    # verify: version 1 no longer matches the data, version 2 does
    stale = cli("report", "verify", str(v1_pdf), "--format", "json", dsn=january)
    assert stale.returncode == 1, stale.stderr
    result = json.loads(stale.stdout)
    assert result["recorded"] and not result["figures_same"] and not result["inputs_same"]
    assert result["latest_version"] == 2
    ok = cli("report", "verify", str(v2_pdf), dsn=january)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "the same data and factors give the same figures" in ok.stdout
    listed = json.loads(cli("report", "list", "--format", "json", dsn=january).stdout)
    assert [(r["subject"], r["version"]) for r in listed] == [("E03", 1), ("E03", 2)]
    assert listed[1]["changed_figures"] == len(changes) > 0


def test_verify_reads_the_receipt_of_a_copied_file(january: str, tmp_path: Path) -> None:
    out = cli("report", "--period", PERIOD, "--out", str(tmp_path), "--lang", "en",
              "--format", "json", dsn=january)
    assert out.returncode == 0, out.stderr
    files = [Path(f) for f in json.loads(out.stdout)["rows"][0]["files"].split()]
    pdf = next(f for f in files if f.suffix == ".pdf")
    text = pdf_text(pdf)
    assert "Monthly carbon emissions report" in text and "Scope 1+2 (location-based)" in text
    with psycopg.connect(january) as conn:  # forget the file records: only the receipt is left
        conn.execute("DELETE FROM report_files")
    for f in files:
        res = cli("report", "verify", str(f), "--format", "json", dsn=january)
        assert res.returncode == 0, (f, res.stdout, res.stderr)
        got = json.loads(res.stdout)
        assert not got["recorded"] and got["figures_same"] and got["inputs_same"]
        assert (got["period"], got["subject"], got["version"]) == (PERIOD, "PARK", 1)


def test_bad_options_are_one_line_each(migrated_dsn: str, tmp_path: Path) -> None:
    for args, needle in (
        (("--period", "2026"), "a report is for one month"),
        (("--period", "2026-13"), "2026-13"),
        (("--period", "2026-01", "--formats", "pdf,docx"), "docx is not one of pdf, xlsx, csv"),
        (("--period", "2026-01", "--enterprise", "E99"), "--enterprise 'E99': unknown enterprise"),
        (("--period", "2026-01", "--enterprise", "E01", "--all-enterprises"), "not both"),
    ):
        res = cli("report", *args, "--out", str(tmp_path), dsn=migrated_dsn)
        assert res.returncode == 2, (args, res.stderr)
        assert needle in res.stderr and "Traceback" not in res.stderr
    missing = cli("report", "verify", str(tmp_path / "nope.pdf"), dsn=migrated_dsn)
    assert missing.returncode == 1 and "cannot read the file" in missing.stderr


def test_no_cjk_font_is_a_clear_error_never_a_pdf_of_boxes(tmp_path: Path) -> None:
    from parkcarbon.reports.errors import ReportFontError
    from parkcarbon.reports.models import Document, Section
    from parkcarbon.reports.pdf import PdfRenderer

    doc = Document("库车经济技术开发区 月度碳排放报告", "园区报告", "zh",
                   (Section("summary", "2 摘要", "摘要", ("范围一+二",)),))
    empty = tmp_path / "fonts"
    empty.mkdir()
    with PdfRenderer(empty, system_fonts=False) as renderer, pytest.raises(
        ReportFontError, match="Noto Sans CJK SC"
    ) as err:
        renderer.render(doc, datetime(2026, 2, 1, tzinfo=UTC))
    assert err.value.hint is not None and "fonts-noto-cjk" in err.value.hint
    with PdfRenderer(Path("/usr/share/fonts/opentype/noto")) as renderer:
        pdf = renderer.render(doc, datetime(2026, 2, 1, tzinfo=UTC))
    assert pdf.startswith(b"%PDF")


def test_alerts_of_the_month_are_listed(january: str, tmp_path: Path) -> None:
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.periods import parse_period
    from parkcarbon.reports.generate import generate_reports

    with psycopg.connect(january) as conn:
        iid = conn.execute(
            "INSERT INTO alert_instances (rule_id, subject, enterprise_id, kind, severity, "
            "state) VALUES ('e05-budget', 'E05', 'E05', 'budget', 'critical', 'firing') "
            "RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO alert_history (instance_id, enterprise_id, at, from_state, to_state, "
            "value) VALUES (%s, 'E05', '2026-01-02 09:30+08', 'pending', 'firing', 104.5)",
            (iid,),
        )
    settings = settings_for(january, tmp_path)
    with connect(january) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        written = generate_reports(conn, settings, parse_period(PERIOD), [None, "E05", "E01"],
                                   formats=("pdf",))
    park, e05, e01 = (pdf_text(w.files[0]) for w in written)
    assert "e05-budget" in park and "pending → firing" in park
    assert "e05-budget" in e05
    assert "e05-budget" not in e01 and "本月无告警" in e01  # only its own alerts


def test_the_monthly_job_writes_last_months_reports_on_the_first(
    january: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    from parkcarbon.registry import load_registry
    from parkcarbon.reports.jobs import REPORT_CRON, monthly_reports_job
    from parkcarbon.runtime.schedule import collect_jobs
    from parkcarbon.scheduling import JobContext
    from support import EXAMPLE_REGISTRY

    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(json.dumps(alerts_doc(smtp_sink.port)), encoding="utf-8")
    settings = settings_for(january, tmp_path).model_copy(update={"alerts_file": alerts})
    job = next(j for j in collect_jobs(settings) if j.name == "monthly_reports")
    assert job.cron == REPORT_CRON == {"day": "1", "hour": "6", "minute": "0"}
    now = datetime(2026, 2, 1, 6, 0, tzinfo=TZ).astimezone(UTC)
    ctx = JobContext(settings, load_registry(EXAMPLE_REGISTRY), now)
    written = monthly_reports_job(ctx)
    assert [w.subject for w in written] == ["PARK", *[f"E{i:02d}" for i in range(1, 15)]]
    assert {w.period for w in written} == {PERIOD}
    assert all(w.version == 1 and len(w.files) == 3 for w in written)
    # e-mailed: the park report to the park officers, E01's and E02's to their contacts
    officers, e01 = "environment-office@kuqa-etdz.example.cn", "ops@tahe-refining.example.cn"
    assert len(smtp_sink.to(officers)) == 1 and len(smtp_sink.to(e01)) == 1
    assert len(smtp_sink.messages) == 3
    # late data for January: the next run writes version 2 of the reports it changed only
    late_readings(january, "E07-ELEC-1")
    later = monthly_reports_job(JobContext(settings, ctx.registry, now + timedelta(days=1)))
    again = [w for w in later if w.new_version]
    assert sorted(w.subject for w in again) == ["E07", "PARK"]
    assert all(w.version == 2 for w in again)
    # only the new park version is e-mailed (E07 has no e-mail channel); nothing twice
    assert len(smtp_sink.messages) == 4
    assert "（第 2 版）" in str(smtp_sink.to(officers)[-1]["Subject"])




def test_reports_rendered_in_worker_processes_are_the_same_bytes(
    january: str, tmp_path: Path
) -> None:
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.periods import parse_period
    from parkcarbon.reports.generate import generate_reports

    settings = settings_for(january, tmp_path)
    subjects: list[str | None] = [None, "E01", "E02", "E05"]
    with connect(january) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        serial = generate_reports(conn, settings, parse_period(PERIOD), subjects,
                                  out_dir=tmp_path / "serial", workers=1)
        parallel = generate_reports(conn, settings, parse_period(PERIOD), subjects,
                                    out_dir=tmp_path / "parallel", workers=2)
    assert [w.subject for w in parallel] == ["PARK", "E01", "E02", "E05"]
    assert all(not w.new_version and w.version == 1 for w in parallel)
    for a, b in zip(serial, parallel, strict=True):
        assert [f.name for f in a.files] == [f.name for f in b.files]
        assert [sha(f) for f in a.files] == [sha(f) for f in b.files]


def test_the_coverage_note_is_in_the_reports_language() -> None:
    from parkcarbon.reports.document import coverage_note

    c = {"subject": "PARK", "days_with_data": 3, "days_elapsed": 31, "coverage_pct": 9.677,
         "insufficient": True, "min_coverage_pct": 50.0}
    assert coverage_note("zh", c) == (
        "园区：已过 31 天中 3 天有数据（9.7%，判断目标状态需 50%）：数据不足，不给出年末状态。")
    assert coverage_note("en", {**c, "subject": "E01", "insufficient": False}) == (
        "E01: data on 3 of 31 days elapsed (9.7%; status needs 50%): budget, pace and "
        "forecast use the days with data only.")


def test_a_month_with_only_process_emissions_is_no_comparison_month() -> None:
    """Reported production without meter data (the example production file covers months
    the demo did not simulate) gives no month-on-month or year-on-year comparison."""
    from parkcarbon.reports.figures import _metered_total

    rows = {"E12": {"scope12_co2_t": 10838.5, "scope1_process_co2_t": 10838.5},
            "E01": {"scope12_co2_t": 5.0, "scope1_process_co2_t": 0.0}}
    assert _metered_total(rows, ["E12"]) is None
    assert _metered_total(rows, ["E01", "E12"]) == 10843.5
    assert _metered_total(rows, ["E02"]) is None
