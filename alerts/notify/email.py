"""E-mail over SMTP: STARTTLS (default), implicit TLS or plain; text and HTML parts."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from parkcarbon.alerts.constants import SEND_TIMEOUT_SECONDS
from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.notify.base import Notifier


class EmailNotifier(Notifier):
    kind = "email"

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.channel.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

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
        c = self.channel
        try:
            if c.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=SEND_TIMEOUT_SECONDS,
                                                      context=self._context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=SEND_TIMEOUT_SECONDS)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=self._context())
                if c.username and c.password is not None:
                    smtp.login(c.username, c.password.resolve())
                refused: dict[str, Any] = {}
                for m in messages:
                    # some recipients refused, the others accepted: the message is sent
                    # (a retry would send it again to those who have it); say who not
                    refused.update(smtp.send_message(self.build(m)))
        except smtplib.SMTPResponseException as exc:
            retry = exc.smtp_code >= 400 and exc.smtp_code < 500
            raise DeliveryError(f"SMTP {exc.smtp_code}",
                                detail=f"SMTP {exc.smtp_code} {exc.smtp_error!r}",
                                retry=retry or exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {c.host}:{c.port}: {exc}") from exc
        done = f"SMTP {c.host}:{c.port} accepted {len(messages)} message(s)"
        return done + (f"; refused recipients: {sorted(refused)}" if refused else "")
