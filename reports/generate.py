"""Generate, record and version monthly reports.

``generate_reports(conn, settings, period, subjects)`` reads the month once
(``figures.load_month``), then for each subject (``None`` = the park, or an enterprise
id) compares its figures with the latest recorded version (``reports`` table):

* no version yet: version 1;
* same figures (SHA-256 of the canonical figures): the same version, rendered with the
  recorded generation time, cut-off and run, so the files are byte-identical;
* different figures (a restatement of a reported month): the next version, with a
  change page listing every key figure that changed (old, new, cause from the
  restatement log). Earlier versions and their files stay as they are.

Files: ``<out>/<YYYY-MM>/carbon-report-<YYYY-MM>-<PARK|id>-v<N>.<lang>.<pdf|xlsx|csv>``,
each recorded in ``report_files`` with its SHA-256 (what ``report verify`` looks up).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from parkcarbon import __version__
from parkcarbon.periods import Period, utc_now
from parkcarbon.reports import queries as Q
from parkcarbon.reports.csvout import render_csv
from parkcarbon.reports.document import build_document
from parkcarbon.reports.errors import ReportError, ReportUsageError
from parkcarbon.reports.figures import (
    KEY_FIGURES,
    MonthData,
    key_figures,
    load_month,
    subject_figures,
)
from parkcarbon.reports.labels import label
from parkcarbon.reports.models import Document, WrittenReport
from parkcarbon.reports.pdf import PdfRenderer
from parkcarbon.reports.xlsx import render_xlsx
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

FORMATS = ("pdf", "xlsx", "csv")
# From this many reports in one call, rendering runs in worker processes (starting one
# costs ~2 s of imports; a report ~0.2 s of typesetting).
PARALLEL_FROM = 24
# A key figure differing by less than this (relative) is the same figure.
RELATIVE_TOLERANCE = 1e-9
_METRIC_LABEL = {
    "scope1_co2_t": "s1_t",
    "scope2_co2_t": "s2_t",
    "scope12_co2_t": "s12_t",
    "scope2_market_co2_t": "scope2_market",
    "scope12_market_co2_t": "s12m_t",
    "scope3_water_co2_t": "scope3_water",
    "tce": "tce_t",
    "other": "other_figures",
}


def parse_formats(text: str) -> tuple[str, ...]:
    """``pdf,xlsx,csv`` -> a tuple in that order; anything else is a usage error."""
    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise ReportUsageError(
            f"--formats {text!r}: {', '.join(bad) or 'nothing'} is not one of pdf, xlsx, csv",
            hint="e.g. --formats pdf,xlsx",
        )
    return tuple(f for f in FORMATS if f in wanted)


def file_name(period: Period, subject: str | None, version: int, lang: str, fmt: str) -> str:
    return f"carbon-report-{period.label}-{subject or 'PARK'}-v{version}.{lang}.{fmt}"


@dataclass(frozen=True)
class _Version:
    report_id: int
    version: int
    new: bool
    generated_at: datetime
    changes: list[dict[str, Any]]
    old_version: int | None


def _differs(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    return abs(float(new) - float(old)) > RELATIVE_TOLERANCE * max(abs(float(old)), 1.0)


def _causes(
    conn: psycopg.Connection, period: Period, enterprise: str | None, run_id: int | None,
    since: datetime,
) -> dict[str, set[str]]:
    """Causes of the restatements of ``period`` after run ``run_id``, per enterprise."""
    from parkcarbon.carbon.restatement import green_power_restatements, restatements

    out: dict[str, set[str]] = {}
    df = restatements(conn, period=period.label, enterprise=enterprise)
    if run_id is not None:
        df = df[df["run_id"] > run_id]
    for ent, cause in zip(df["enterprise_id"], df["cause"], strict=True):
        out.setdefault(str(ent), set()).add(str(cause))
    gp = green_power_restatements(conn, period=period.label, enterprise=enterprise)
    gp = gp[gp["restated_at"] > since]
    for ent in gp["enterprise_id"]:
        out.setdefault(str(ent), set()).add("green_power")
    return out


def compute_changes(
    old: dict[str, Any], new: dict[str, Any], causes: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """The change page: every key figure that differs (old, new, causes)."""
    every = sorted({c for cs in causes.values() for c in cs}) or ["other"]
    rows: list[dict[str, Any]] = []

    def add(subject: str, metric: str, o: Any, n: Any, why: list[str]) -> None:
        rows.append({
            "subject": subject,
            "metric": metric,
            "metric_label_zh": label("zh", _METRIC_LABEL[metric]),
            "metric_label_en": label("en", _METRIC_LABEL[metric]),
            "old": o,
            "new": n,
            "causes": why,
        })

    for metric in KEY_FIGURES:
        o, n = old["summary"].get(metric), new["summary"].get(metric)
        if _differs(o, n):
            add("PARK" if new.get("enterprise") is None else new["enterprise"], metric, o, n,
                every)
    if new.get("enterprise") is None:
        ents = sorted(set(old["enterprises"]) | set(new["enterprises"]))
        for ent in ents:
            o_row = old["enterprises"].get(ent, {})
            n_row = new["enterprises"].get(ent, {})
            for metric in KEY_FIGURES:
                if metric not in o_row and metric not in n_row:
                    continue
                if _differs(o_row.get(metric), n_row.get(metric)):
                    add(ent, metric, o_row.get(metric), n_row.get(metric),
                        sorted(causes.get(ent, set())) or ["other"])
    if not rows:  # no tCO2 or tce changed: indicators, budgets or data quality did
        add("PARK" if new.get("enterprise") is None else new["enterprise"], "other", None,
            None, every)
    return rows


def _version(
    conn: psycopg.Connection, period: Period, enterprise: str | None, fig: dict[str, Any],
    now: datetime,
) -> _Version:
    receipt = fig["receipt"]
    keys = {**key_figures(fig), "enterprise": enterprise}
    for _attempt in range(3):
        latest = conn.execute(Q.LATEST_REPORT, (period.start, enterprise)).fetchone()
        if latest is not None and latest[2] == receipt["figures_sha256"]:
            # Same figures: the same version, exactly as recorded.
            receipt.update(
                inputs_sha256=latest[3], accounting_run_id=latest[4],
                data_cutoff=latest[7].isoformat() if latest[7] else None,
            )
            changes = list(latest[8] or [])
            old_version = int(latest[1]) - 1 if changes else None
            return _Version(int(latest[0]), int(latest[1]), False, latest[6], changes,
                            old_version)
        version = 1 if latest is None else int(latest[1]) + 1
        changes = []
        if latest is not None:
            causes = _causes(conn, period, enterprise, latest[4], latest[6])
            changes = compute_changes(dict(latest[5]), keys, causes)
        generated_at = now.replace(microsecond=0)
        cutoff = receipt["data_cutoff"]
        row = conn.execute(
            Q.INSERT_REPORT,
            (
                period.start, enterprise, version, receipt["figures_sha256"],
                receipt["inputs_sha256"], receipt["accounting_run_id"],
                receipt["factor_library"], f"parkcarbon {__version__}", Jsonb(keys),
                Jsonb(changes), datetime.fromisoformat(cutoff) if cutoff else None,
                generated_at,
            ),
        ).fetchone()
        if row is not None:
            log.info(
                "report %s %s: version %d recorded%s", period.label, enterprise or "PARK",
                version, f" ({len(changes)} changed figures)" if changes else "",
            )
            return _Version(int(row[0]), version, True, generated_at, changes,
                            version - 1 if latest is not None else None)
    raise ReportError(f"report {period.label} {enterprise or 'PARK'}: could not record a version")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate_reports(
    conn: psycopg.Connection,
    settings: Settings,
    period: Period,
    subjects: Sequence[str | None],
    *,
    lang: str | None = None,
    out_dir: Path | None = None,
    formats: Sequence[str] = FORMATS,
    now: datetime | None = None,
    month: MonthData | None = None,
    workers: int | None = None,
) -> list[WrittenReport]:
    """Write (and record) the reports of ``subjects`` for ``period``; commits each one
    (rendered in ``workers`` processes, from ``PARALLEL_FROM`` reports: all at once).

    The caller brings the chain up to date first (``carbon.current.bring_up_to_date``).
    """
    lang = lang or settings.report_lang
    out = (out_dir or settings.report_dir) / period.label
    now = now or utc_now()
    md = month or load_month(conn, settings, period, now=now)
    workers = _workers(len(subjects)) if workers is None else workers
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked worker would share (and on exit close) the
        # parent's database connection
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    written: list[WrittenReport] = []
    try:
        jobs = []
        for subject in subjects:
            t0 = time.perf_counter()
            # a report's record is rebuilt from its files' month on the next run: no need
            # to wait for the WAL flush of each of 300 commits (17 ms each, much more on
            # a busy disk); a crash loses at most the last records, never consistency
            conn.execute(Q.ASYNC_COMMIT)
            fig = subject_figures(md, subject)
            v = _version(conn, period, subject, fig, now)
            stamp = v.generated_at.astimezone(settings.tz).isoformat(timespec="seconds")
            doc = build_document(fig, lang, version=v.version, generated_at=stamp,
                                 changes=v.changes, old_version=v.old_version)
            args = (doc, v.generated_at, tuple(formats), settings.report_font_dir)
            result = pool.submit(render_formats, *args) if pool else render_formats(*args)
            jobs.append((subject, fig, v, result, t0, tuple(formats)))
            if pool is None:
                written.append(_store(conn, period, lang, out, jobs.pop()))
                conn.commit()  # one by one: each report is recorded with its files
        for job in jobs:  # in parallel: recorded all together once every file is written
            written.append(_store(conn, period, lang, out, job))
        conn.commit()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _close_renderer()
    return written


def _workers(n: int) -> int:
    """Processes for ``n`` reports: one, unless there are many reports and at least 4
    CPUs (on 2 busy CPUs the workers' start-up cost more than they saved: 40 enterprise
    reports took 29 s with 2 workers against 18 s in one process)."""
    cpus = os.cpu_count() or 1
    return 1 if n < PARALLEL_FROM or cpus < 4 else min(4, cpus)


_renderer: list[PdfRenderer] = []  # this process's Typst compiler, made on first use


def _close_renderer() -> None:
    while _renderer:
        _renderer.pop().close()


def render_formats(
    doc: Document, generated_at: datetime, formats: tuple[str, ...], font_dir: Path
) -> list[bytes]:
    """The bytes of ``doc`` in each format (run in the caller or in a worker process)."""
    out = []
    for fmt in formats:
        if fmt == "pdf":
            if not _renderer or _renderer[0].font_dir != font_dir:
                _close_renderer()
                _renderer.append(PdfRenderer(font_dir))
            out.append(_renderer[0].render(doc, generated_at))
        elif fmt == "xlsx":
            out.append(render_xlsx(doc, generated_at))
        else:
            out.append(render_csv(doc))
    return out


def _store(
    conn: psycopg.Connection, period: Period, lang: str, out: Path, job: tuple[Any, ...]
) -> WrittenReport:
    """Write one report's files and record them."""
    subject, fig, v, result, t0, formats = job
    datas: list[bytes] = result if isinstance(result, list) else result.result()
    paths = []
    for fmt, data in zip(formats, datas, strict=True):
        path = out / file_name(period, subject, v.version, lang, fmt)
        _write(path, data)
        conn.execute(
            Q.UPSERT_FILE,
            (v.report_id, subject, lang, fmt, str(path), hashlib.sha256(data).hexdigest(),
             len(data)),
        )
        paths.append(path)
    return WrittenReport(v.report_id, period.label, subject, v.version, v.new, tuple(paths),
                         fig["receipt"]["figures_sha256"], time.perf_counter() - t0)


def recheck_reported(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    skip: Period | None = None,
    now: datetime | None = None,
) -> list[WrittenReport]:
    """Months already reported whose figures may have changed since (restatements, green
    power, budgets): regenerated, giving a new version only where a figure changed."""
    from parkcarbon.periods import parse_period

    todo: dict[str, list[str | None]] = {}
    for period_start, ent, run, at in conn.execute(Q.LATEST_REPORTED).fetchall():
        p = parse_period(f"{period_start:%Y-%m}")
        if skip is not None and p.label == skip.label:
            continue
        row = conn.execute(
            Q.RESTATED_SINCE, {"d0": p.start, "d1": p.end, "run": run or 0, "ent": ent, "at": at}
        ).fetchone()
        if row and row[0]:
            todo.setdefault(p.label, []).append(ent)
    written: list[WrittenReport] = []
    for label_, subjects in sorted(todo.items()):
        p = parse_period(label_)
        written += [
            w for w in generate_reports(conn, settings, p, subjects, now=now) if w.new_version
        ]
    return written
