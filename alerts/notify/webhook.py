"""Webhook in Alertmanager's payload (``version: "4"``), so existing bridges work."""

from __future__ import annotations

from typing import Any

from parkcarbon.alerts.errors import DeliveryError
from parkcarbon.alerts.notify.base import Notifier, post_json

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert


def _annotations(a: dict[str, Any], summary: str) -> dict[str, str]:
    out = {"summary": summary}
    for key in ("description", "value", "threshold", "ack_url", "enterprise_name",
                "state", "severity_zh", "acked_by"):
        if a.get(key) is not None:
            out[key] = str(a[key])
    return out


def alertmanager_payload(message: dict[str, Any], summaries: list[str]) -> dict[str, Any]:
    """The Alertmanager webhook body of one message (``summaries``: one line per alert)."""
    alerts = []
    for a, summary in zip(message["alerts"], summaries, strict=True):
        alerts.append({
            "status": a["status"],
            "labels": dict(a["labels"]),
            "annotations": _annotations(a, summary),
            "startsAt": a.get("starts_at") or message["created_at"],
            "endsAt": a.get("ends_at") or ZERO_TIME,
            "generatorURL": a.get("grafana_url") or "",
            "fingerprint": a["fingerprint"],
        })
    labels = [a["labels"] for a in alerts]
    common = {k: v for k, v in labels[0].items()
              if all(lbl.get(k) == v for lbl in labels)} if labels else {}
    group_labels = dict(part.split("=", 1) for part in
                        message["group_key"].split("|", 1)[1].split(",") if "=" in part)
    return {
        "version": "4",
        "groupKey": message["group_key"],
        "truncatedAlerts": 0,
        "status": message["status"],
        "receiver": message["recipient"],
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "notification_reason": message["reason"],
        "alerts": alerts,
        "title": message["title"],
    }


class WebhookNotifier(Notifier):
    kind = "webhook"

    def send(self, messages: list[dict[str, Any]]) -> str:
        details = []
        headers = {}
        if self.channel.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.channel.bearer_token.resolve()}"
        for m in messages:
            lines = self.renderer.render(m, "text", language=self.language).split("\n")
            summaries = [ln for ln in lines[2:] if ln and not ln.startswith("  ")]
            summaries = (summaries + [m["title"]] * len(m["alerts"]))[: len(m["alerts"])]
            status, body = post_json(self.channel.url, alertmanager_payload(m, summaries),
                                     headers)
            if not 200 <= status < 300:
                raise DeliveryError(f"HTTP {status}", detail=f"HTTP {status}: {body}")
            details.append(f"HTTP {status}")
        return ", ".join(details)
