"""A real SMTP server (aiosmtpd) for the report e-mail tests: it keeps every message it
accepts and answers DATA with the replies queued in ``replies`` ("" accepts; once the
queue is empty, every message is accepted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any


@dataclass
class SmtpSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # next DATA replies ("": 250)
    attempts: int = 0  # DATA commands received, accepted or not

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        reply = self.replies.pop(0) if self.replies else ""
        if reply:
            return reply
        self.raw.append(envelope.content)
        self.envelopes.append(list(envelope.rcpt_tos))
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m, rcpt in zip(self.messages, self.envelopes, strict=True)
                if address in rcpt]


def alerts_doc(port: int) -> dict[str, object]:
    """The e-mail channels of the report tests: the park's, E01's and E02's (E03 has a
    webhook only, so no report e-mail) on the SMTP server at ``port``."""
    def mail(cid: str, to: list[str], enterprise: str | None = None) -> dict[str, object]:
        doc: dict[str, object] = {"id": cid, "type": "email", "host": "127.0.0.1",
                                  "port": port, "security": "none",
                                  "from": "园区能耗监测 <reports@kuqa-etdz.example.cn>", "to": to}
        if enterprise:
            doc["enterprise"] = enterprise
        return doc

    return {"channels": [
        mail("park-mail", ["environment-office@kuqa-etdz.example.cn"]),
        mail("e01-mail", ["ops@tahe-refining.example.cn"], "E01"),
        mail("e02-mail", ["energy@e02.example.cn"], "E02"),
        {"id": "e03-hook", "type": "webhook", "enterprise": "E03",
         "url": "http://127.0.0.1:9/hook"},  # not an e-mail channel: no report
    ]}
