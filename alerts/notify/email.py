"""E-mail over SMTP: STARTTLS (default), implicit TLS or plain; text and HTML parts.

``send_mail(channel, subject=..., text=..., attachments=...)`` is the public way for
other packages (the monthly reports) to send a message with files attached through a
configured e-mail channel: the same server, security, login and sender as the alerts.

SMTP replies are classified as RFC 5321 does: 4xx (and a lost or refused connection) is
transient and retried, 5xx is permanent (``DeliveryError(retry=False)``) and never
retried: the outbox gives such a message up at once instead of sending it again and
again into the same refusal.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from parkcarbon.alerts.constants import SEND_TIMEOUT_SECONDS
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.models import EmailChannel
from parkcarbon.alerts.notify.base import Notifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """One file attached to a message: its name, bytes and MIME type."""

    filename: str
    data: bytes
    mime_type: str = "application/octet-stream"


def transient(code: int) -> bool:
    """Is SMTP reply ``code`` worth a retry? 4xx yes; 5xx (permanent) no."""
    return 400 <= code < 500


def _context(channel: EmailChannel) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not channel.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@contextmanager
def _session(channel: EmailChannel) -> Iterator[smtplib.SMTP]:
    """A logged-in SMTP session with the channel's server; SMTP errors and lost
    connections become ``DeliveryError`` (retry unless the server said 5xx)."""
    c = channel
    try:
        if c.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=SEND_TIMEOUT_SECONDS,
                                                  context=_context(c))
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=SEND_TIMEOUT_SECONDS)
        try:
            if c.security == "starttls":
                smtp.starttls(context=_context(c))
            if c.username and c.password is not None:
                smtp.login(c.username, c.password.resolve())
            yield smtp
        finally:
            _quit(smtp)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        codes = [int(code) for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"SMTP {c.host}:{c.port} refused every recipient",
            detail=f"SMTP refused every recipient: {exc.recipients!r}",
            retry=any(transient(code) for code in codes),
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}",
                            detail=f"SMTP {exc.smtp_code} {exc.smtp_error!r}",
                            retry=transient(exc.smtp_code)) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {c.host}:{c.port}: {exc}") from exc


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session. Once the message is accepted it is sent: a QUIT answered with
    something other than 221, or a connection lost at QUIT, must not turn it into a
    failure (a retry would send it twice)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.debug("SMTP QUIT: %s (the session is closed anyway)", exc)
        smtp.close()


def _accepted(channel: EmailChannel, count: int, refused: dict[str, Any]) -> str:
    done = f"SMTP {channel.host}:{channel.port} accepted {count} message(s)"
    return done + (f"; refused recipients: {sorted(refused)}" if refused else "")


def build_mail(
    channel: EmailChannel,
    *,
    subject: str,
    text: str,
    to: Sequence[str] | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A message from the channel's sender to ``to`` (default: the channel's ``to``)."""
    msg = EmailMessage()
    msg["Subject"] = subject  # non-ASCII: RFC 2047 encoded-words (utf-8)
    msg["From"] = channel.sender
    msg["To"] = ", ".join(to or channel.to)
    msg["Message-ID"] = make_msgid(domain="parkcarbon")
    msg.set_content(text)
    for a in attachments:
        maintype, _, subtype = a.mime_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def send_mail(
    channel: EmailChannel,
    *,
    subject: str,
    text: str,
    to: Sequence[str] | None = None,
    attachments: Sequence[Attachment] = (),
) -> str:
    """Send one message (with ``attachments``) through ``channel``; returns what the
    server answered, raises ``DeliveryError`` (``retry`` False for a 5xx reply)."""
    msg = build_mail(channel, subject=subject, text=text, to=to, attachments=attachments)
    with _session(channel) as smtp:
        refused = smtp.send_message(msg)
    return _accepted(channel, 1, refused)


class EmailNotifier(Notifier):
    kind = "email"

    def build(self, m: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = m["title"]
        msg["From"] = self.channel.sender
        msg["To"] = ", ".join(self.channel.to)
        msg["Message-ID"] = make_msgid(domain="parkcarbon")
        msg["X-Parkcarbon-Group"] = m["group_key"]
        msg.set_content(self.renderer.render(m, "text", language=self.language))
        msg.add_alternative(self.renderer.render(m, "html", language=self.language),
                            subtype="html")
        return msg

    def send(self, messages: list[dict[str, Any]]) -> str:
        refused: dict[str, Any] = {}
        with _session(self.channel) as smtp:
            for m in messages:
                # some recipients refused, the others accepted: the message is sent
                # (a retry would send it again to those who have it); say who not
                refused.update(smtp.send_message(self.build(m)))
        return _accepted(self.channel, len(messages), refused)
