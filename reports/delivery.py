"""E-mail delivery of the monthly reports through the alerts e-mail channels.

Who gets what (read from the alerts file, setting ``alerts_file``):

* the park report: the park officers, i.e. the ``to`` of every e-mail channel without
  an ``enterprise`` (park staff), or the addresses of the setting
  ``report_park_emails`` (sent through the first such channel's server);
* an enterprise's report: that enterprise's own contacts, the ``to`` of every e-mail
  channel with ``enterprise: <its id>``. No other enterprise's address ever gets it.

Each (report version, language, channel) is one message with the report's files
attached, recorded in ``report_deliveries`` before and after it is sent: a message
marked ``sent`` is never sent again (a re-run, a retry or a second instance skips it),
a 5xx reply marks it ``failed`` at once (permanent: not retried, shown by ``report
list``), a 4xx reply or an unreachable server is retried ``SEND_ATTEMPTS`` times with
backoff and then left ``retry`` for the next ``report --send`` or scheduled run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from parkcarbon.alerts.errors import AlertsConfigError, DeliveryError
from parkcarbon.alerts.models import AlertsConfig, EmailChannel
from parkcarbon.alerts.notify.email import Attachment, send_mail
from parkcarbon.periods import utc_now
from parkcarbon.reports import queries as Q
from parkcarbon.reports.errors import ReportError
from parkcarbon.reports.labels import label
from parkcarbon.reports.models import WrittenReport
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# Tries of one message in one run while the server answers 4xx or cannot be reached
# (then the next run tries again); the wait doubles from RETRY_DELAY_SECONDS.
SEND_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 5.0
MIME_TYPES = {
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
}


@dataclass(frozen=True)
class MailRoute:
    """One message of one report: the channel (server, sender) and its recipients."""

    channel: EmailChannel
    to: tuple[str, ...]


@dataclass(frozen=True)
class Delivery:
    """What became of one report's message on one channel."""

    report_id: int
    subject: str
    version: int
    channel_id: str
    to: tuple[str, ...]
    status: str  # sent | retry | failed | skipped (sent or failed before, or being sent)
    attempts: int
    detail: str


def park_officers(settings: Settings) -> tuple[str, ...]:
    """The setting ``report_park_emails`` as addresses (empty: use the channels')."""
    found = tuple(a.strip() for a in settings.report_park_emails.split(",") if a.strip())
    bad = [a for a in found if "@" not in a]
    if bad:
        raise ReportError(
            f"setting report_park_emails: {', '.join(bad)} is not an e-mail address",
            hint="comma-separated addresses, e.g. a@park.example,b@park.example",
        )
    return found


def mail_routes(config: AlertsConfig, settings: Settings, enterprise: str | None
                ) -> list[MailRoute]:
    """Where the report of ``enterprise`` (None: the park) goes."""
    channels = [c for c in config.channels
                if isinstance(c, EmailChannel) and c.enterprise == enterprise]
    if enterprise is None:
        officers = park_officers(settings)
        if officers:
            if not channels:
                raise ReportError(
                    f"setting report_park_emails is set but {config.source} has no park "
                    "e-mail channel (type email, no enterprise) to send it through",
                    hint="add one under channels: in the alerts file",
                )
            return [MailRoute(channels[0], officers)]
    return [MailRoute(c, tuple(c.to)) for c in channels]


def _mail_text(w: WrittenReport, lang: str, name: str) -> tuple[str, str]:
    subject = label(lang, "mail_subject", name=name, period=w.period, version=w.version)
    files = "\n".join(f"  {f.name}" for f in w.files)
    body = label(lang, "mail_body", name=name, period=w.period, version=w.version,
                 files=files, sha=w.figures_sha256)
    return subject, body


def _subject_name(conn: psycopg.Connection, w: WrittenReport, park_name: str) -> str:
    if w.enterprise_id is None:
        return park_name
    row = conn.execute(Q.ENTERPRISE_NAME, (w.enterprise_id,)).fetchone()
    return str(row[0]) if row and row[0] else w.enterprise_id


def deliver_reports(
    conn: psycopg.Connection,
    settings: Settings,
    config: AlertsConfig,
    written: Sequence[WrittenReport],
    *,
    lang: str,
    attempts: int = SEND_ATTEMPTS,
    retry_delay_seconds: float = RETRY_DELAY_SECONDS,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry_failed: bool = False,
) -> list[Delivery]:
    """E-mail every report of ``written`` to its recipients (commits each delivery).

    ``retry_failed``: also try again those a 5xx made final (``report --send``, after
    the address or the channel was fixed; the scheduled jobs never do)."""
    park = conn.execute(Q.PARK_NAME).fetchone()
    park_name = str((park[0] or park[1]) if park else "") or label(lang, "park")
    done: list[Delivery] = []
    for w in written:
        routes = mail_routes(config, settings, w.enterprise_id)
        if not routes:
            continue
        mail_subject, text = _mail_text(w, lang, _subject_name(conn, w, park_name))
        missing = [f for f in w.files if not f.is_file()]
        if missing or not w.files:  # moved or deleted since it was written: this one
            why = (f"{missing[0]} is gone" if missing else "it has no files on record")
            detail = (f"cannot e-mail report {w.period} {w.subject} v{w.version}: {why}; "
                      f"`parkcarbon report --period {w.period}` writes it again")
            log.error("%s", detail)  # waits, the others still go
            done += [Delivery(w.report_id, w.subject, w.version, r.channel.id, r.to, "retry",
                              0, detail) for r in routes]
            continue
        files = [Attachment(f.name, f.read_bytes(), MIME_TYPES.get(f.suffix,
                                                                   "application/octet-stream"))
                 for f in w.files]
        for route in routes:
            done.append(_deliver_one(conn, w, lang, route, mail_subject, text, files,
                                     attempts, retry_delay_seconds, now, sleep,
                                     retry_failed))
    return done


def retry_pending(
    conn: psycopg.Connection, settings: Settings, config: AlertsConfig, **kw: Any
) -> list[Delivery]:
    """Try again every delivery left ``retry`` (the latest version of each report only:
    an older one is superseded, its successor is e-mailed when it is written)."""
    by_lang: dict[str, list[WrittenReport]] = {}
    for rid, period, ent, version, sha, lang, paths in conn.execute(
        Q.PENDING_DELIVERIES
    ).fetchall():
        by_lang.setdefault(str(lang), []).append(WrittenReport(
            int(rid), f"{period:%Y-%m}", ent, int(version), False,
            tuple(Path(x) for x in paths or []), str(sha), 0.0))
    conn.commit()
    done: list[Delivery] = []
    for lang, reports in sorted(by_lang.items()):
        try:
            done += deliver_reports(conn, settings, config, reports, lang=lang, **kw)
        except ReportError as exc:  # a configuration error (report_park_emails)
            log.error("report e-mail retry: %s", exc)
    return done


def _deliver_one(
    conn: psycopg.Connection, w: WrittenReport, lang: str, route: MailRoute, subject: str,
    text: str, files: list[Attachment], attempts: int, delay: float, now: datetime | None,
    sleep: Callable[[float], None], retry_failed: bool = False,
) -> Delivery:
    key = {"report": w.report_id, "ent": w.enterprise_id, "lang": lang,
           "channel": route.channel.id, "to": list(route.to), "now": now or utc_now()}
    conn.execute(Q.NEW_DELIVERY, key)
    conn.commit()
    claimed = conn.execute(Q.CLAIM_DELIVERY, key).fetchone()
    again = claimed is not None and (claimed[0] == "retry"
                                     or (retry_failed and claimed[0] == "failed"))
    if claimed is None or not again:  # sent (or failed) before, or being sent
        conn.rollback()
        status = "being sent elsewhere" if claimed is None else str(claimed[0])
        return Delivery(w.report_id, w.subject, w.version, route.channel.id, route.to, "skipped",
                        0 if claimed is None else int(claimed[1]), status)
    tries = 0
    while True:
        tries += 1
        try:
            detail = send_mail(route.channel, subject=subject, text=text, to=route.to,
                               attachments=files)
            status = "sent"
            break
        except AlertsConfigError as exc:  # the SMTP password's secret is not set:
            detail, status = str(exc), "retry"  # the next run, once it is, sends it
            break
        except DeliveryError as exc:
            detail = exc.detail
            status = "retry" if exc.retry else "failed"
            if not exc.retry or tries >= attempts:
                break
            log.warning("report %s %s: e-mail on %s failed (try %d), again in %.0f s: %s",
                        w.period, w.subject, route.channel.id, tries,
                        delay * 2 ** (tries - 1), detail)
            sleep(delay * 2 ** (tries - 1))
    conn.execute(Q.RECORD_DELIVERY, {**key, "status": status, "tries": tries,
                                     "detail": detail[:500], "now": now or utc_now()})
    conn.commit()
    if status == "sent":
        log.info("report %s %s v%d e-mailed on %s to %s", w.period, w.subject, w.version,
                 route.channel.id, ", ".join(route.to))
    else:
        log.error("report %s %s v%d: e-mail on %s %s after %d tries: %s", w.period,
                  w.subject, w.version, route.channel.id,
                  "failed permanently" if status == "failed" else "not sent yet", tries,
                  detail)
    return Delivery(w.report_id, w.subject, w.version, route.channel.id, route.to, status,
                    int(claimed[1]) + tries, detail)
