"""From active instances to outbox messages: routes, isolation, silences, inhibition,
quiet hours, escalation, grouping, acknowledgement, repeats.

Per notification pipeline (Alertmanager's order): an active instance is *muted* for a
recipient when an inhibition or a silence matches it, or when the recipient is in its
quiet hours and the severity may not bypass them. Muted alerts are neither new nor
resolved: nothing is sent about them until they are unmuted (then they are new) or
resolve (then the resolve is sent, if their firing was).

Groups: one per recipient and ``group_by`` labels. ``alert_groups.notified`` holds what
the last message said was active (a snapshot per fingerprint), so after a restart the
resolve of an instance that resolved while the service was down is still owed and
sent. A new group waits ``group_wait`` (an alert that resolves within it is never
sent: flapping costs nothing); then a message goes out when alerts were added or
resolved, at most once per ``group_interval``; with nothing changed, it repeats every
``repeat_interval`` while some alert in it is not acknowledged.

Escalation: a route's ``escalate`` levels add their recipients once the alert has been
active for ``after`` and is not acknowledged; once told, an escalation recipient also
gets the resolve. Isolation: an enterprise's recipient only ever gets its own
enterprise's alerts, whatever the configuration says (``alerts check`` rejects such a
configuration too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from parkcarbon.alerts import queries as Q
from parkcarbon.alerts.ack import link_for
from parkcarbon.alerts.constants import ACTIVE_STATES, SEVERITIES, STATE_ZH
from parkcarbon.alerts.models import AlertsConfig, Instance, Matcher, Recipient, match_map
from parkcarbon.registry import Registry

log = logging.getLogger(__name__)


def labels_of(config: AlertsConfig, inst: Instance) -> dict[str, str]:
    labels = {
        "alertname": inst.rule_id, "rule": inst.rule_id, "kind": inst.kind,
        "severity": inst.severity, "subject": inst.subject,
        "enterprise": inst.enterprise_id or "", "meter": inst.meter_id or "",
    }
    with contextlib.suppress(KeyError):
        labels.update(config.rule(inst.rule_id).labels)
    return labels


@dataclass
class Plan:
    """What one dispatch decided (for logs, tests and the CLI)."""

    enqueued: list[dict[str, Any]] = field(default_factory=list)
    muted: dict[str, str] = field(default_factory=dict)  # fingerprint -> why

    @property
    def messages(self) -> int:
        return len(self.enqueued)


def active_silences(conn: psycopg.Connection, now: datetime) -> list[tuple[int, list[Matcher]]]:
    rows = conn.execute(Q.ACTIVE_SILENCES, {"now": now}).fetchall()
    return [(sid, [Matcher.model_validate(m) for m in matchers]) for sid, matchers in rows]


def _inhibited(config: AlertsConfig, inst: Instance, labels: dict[str, str],
               active: list[tuple[Instance, dict[str, str]]]) -> str | None:
    for n, rule in enumerate(config.inhibit):
        if not match_map(rule.target, labels):
            continue
        for src, src_labels in active:
            if src is inst or src.state not in ("firing", "recovering", "nodata"):
                continue
            if not match_map(rule.source, src_labels):
                continue
            if all(labels.get(k, "") == src_labels.get(k, "") for k in rule.equal):
                return f"inhibited by {src.rule_id} {src.subject} (inhibit[{n}])"
    return None


def _in_quiet_hours(rec: Recipient, severity: str, now: datetime, tz: ZoneInfo) -> bool:
    q = rec.quiet_hours
    if q is None or severity in q.bypass:
        return False
    return q.contains(now.astimezone(tz).time())


@dataclass
class _Routed:
    inst: Instance
    labels: dict[str, str]
    escalated: bool
    timing: tuple[float, float, float]  # group_wait, group_interval, repeat_interval


def _route(config: AlertsConfig, inst: Instance, labels: dict[str, str], now: datetime,
           notified_to: set[str]) -> dict[str, _Routed]:
    """recipient id -> how the alert reaches them."""
    d = config.defaults
    out: dict[str, _Routed] = {}
    age = (now - inst.active_since).total_seconds() if inst.active_since else 0.0
    for route in config.routes:
        if not match_map(route.match, labels):
            continue
        timing = (
            d.group_wait if route.group_wait is None else route.group_wait,
            d.group_interval if route.group_interval is None else route.group_interval,
            d.repeat_interval if route.repeat_interval is None else route.repeat_interval,
        )
        if route.to == "enterprise":
            first = [r.id for r in config.recipients
                     if r.enterprise is not None and r.enterprise == inst.enterprise_id]
        else:
            first = list(route.to)
        for rid in first:
            out.setdefault(rid, _Routed(inst, labels, False, timing))
        for esc in route.escalate:
            reached = age >= esc.after and not inst.acked(now)
            for rid in esc.to:
                if rid not in out and (reached or rid in notified_to):
                    out[rid] = _Routed(inst, labels, True, timing)
    # isolation, enforced here whatever the file says
    allowed = {}
    for rid, routed in out.items():
        try:
            rec = config.recipient(rid)
        except KeyError:
            continue
        if rec.enterprise is None or rec.enterprise == inst.enterprise_id:
            allowed[rid] = routed
        else:
            log.error("refusing to send alert %s %s of %s to %s (enterprise %s)",
                      inst.rule_id, inst.subject, inst.enterprise_id, rid, rec.enterprise)
    return allowed


def group_key(rec: Recipient, labels: dict[str, str]) -> str:
    return rec.id + "|" + ",".join(f"{k}={labels.get(k, '')}" for k in rec.group_by)


def snapshot(config: AlertsConfig, registry: Registry | None, inst: Instance,
             labels: dict[str, str], ack_url: str | None) -> dict[str, Any]:
    """One alert as a message carries it (Alertmanager's alert fields and ours)."""
    ent_name = None
    if registry is not None and inst.enterprise_id:
        try:
            ent_name = registry.enterprise(inst.enterprise_id).name_zh
        except KeyError:
            ent_name = None
    try:
        rule = config.rule(inst.rule_id)
        description = rule.description
    except KeyError:
        description = None
    return {
        "fingerprint": inst.fingerprint, "instance_id": inst.id, "episode": inst.episode,
        "rule": inst.rule_id, "kind": inst.kind, "severity": inst.severity,
        "severity_zh": SEVERITIES.get(inst.severity, inst.severity),
        "state": inst.state, "state_zh": STATE_ZH.get(inst.state, inst.state),
        "subject": inst.subject, "enterprise_id": inst.enterprise_id,
        "enterprise_name": ent_name, "meter_id": inst.meter_id,
        "value": inst.value, "threshold": inst.threshold, "description": description,
        "starts_at": inst.active_since.isoformat() if inst.active_since else None,
        "acked_by": inst.ack_by,
        "ack_until": inst.ack_until.isoformat() if inst.ack_until else None,
        "ack_url": ack_url, "grafana_url": config.grafana_url, "labels": labels,
        "detail": inst.detail,
    }


def dispatch(conn: psycopg.Connection, config: AlertsConfig, *, now: datetime, tz: ZoneInfo,
             registry: Registry | None = None, ack_secret: str | None = None) -> Plan:
    """Decide and enqueue the messages due at ``now`` (in the caller's transaction)."""
    from parkcarbon.alerts.state import active_instances

    plan = Plan()
    instances = [i for i in active_instances(conn) if i.state in ACTIVE_STATES]
    labelled = [(i, labels_of(config, i)) for i in instances]
    silences = active_silences(conn, now)
    groups = {r[0]: r for r in conn.execute(Q.GROUPS).fetchall()}
    notified_to: dict[str, set[str]] = {}
    for row in groups.values():
        for fp in row[6]:
            notified_to.setdefault(fp, set()).add(row[1])

    current: dict[str, dict[str, _Routed]] = {}  # group key -> fingerprint -> routed
    muted: dict[str, set[str]] = {}  # group key -> muted fingerprints
    recipients = {r.id: r for r in config.recipients}
    for inst, labels in labelled:
        why = _inhibited(config, inst, labels, labelled)
        if why is None:
            for sid, matchers in silences:
                if all(m.matches(labels) for m in matchers):
                    why = f"silenced by silence {sid}"
                    break
        routed = _route(config, inst, labels, now, notified_to.get(inst.fingerprint, set()))
        for rid, r in routed.items():
            rec = recipients[rid]
            key = group_key(rec, labels)
            reason = why
            if reason is None and _in_quiet_hours(rec, inst.severity, now, tz):
                reason = f"quiet hours of {rid}"
            if reason is not None:
                muted.setdefault(key, set()).add(inst.fingerprint)
                plan.muted[f"{inst.fingerprint}@{rid}"] = reason
            else:
                current.setdefault(key, {})[inst.fingerprint] = r

    for key in sorted(set(current) | set(groups)):
        owner = recipients.get(key.split("|", 1)[0])
        if owner is None:
            conn.execute(Q.DELETE_GROUP, (key,))  # recipient removed from the file
            continue
        quiet = owner.quiet_hours.bypass if owner.quiet_hours is not None and \
            owner.quiet_hours.contains(now.astimezone(tz).time()) else None
        _dispatch_group(conn, config, registry, ack_secret, plan, key, owner,
                        current.get(key, {}), muted.get(key, set()), groups.get(key), now,
                        quiet)
    return plan


def _dispatch_group(conn: psycopg.Connection, config: AlertsConfig, registry: Registry | None,
                    ack_secret: str | None, plan: Plan, key: str, rec: Recipient,
                    alerts: dict[str, _Routed], muted: set[str], row: Any,
                    now: datetime, quiet: tuple[str, ...] | None = None) -> None:
    d = config.defaults
    timing = next(iter(alerts.values())).timing if alerts else (
        d.group_wait, d.group_interval, d.repeat_interval)
    group_wait, group_interval, repeat_interval = timing
    if row is None:
        if not alerts:
            return
        created, first_due, last_sent, notified = now, now + timedelta(seconds=group_wait), \
            None, {}
    else:
        _, _, _, created, first_due, last_sent, notified = row
        notified = dict(notified)
    new = [fp for fp, r in alerts.items()
           if fp not in notified or notified[fp].get("episode") != r.inst.episode]
    # in quiet hours a resolve waits too, unless its severity may bypass them
    resolved = [fp for fp in notified if fp not in alerts and fp not in muted
                and (quiet is None or notified[fp].get("severity") in quiet)]
    reason = None
    if new or resolved:
        if last_sent is None:
            due = first_due is None or now >= first_due
        else:
            due = (now - last_sent).total_seconds() >= group_interval
        if due and (new or last_sent is not None):
            escalated = any(alerts[fp].escalated for fp in new)
            reason = ("escalation" if escalated else "new") if new else "resolved"
        elif not new and last_sent is None:
            # resolved before anything was sent: forget it (flapping within group_wait)
            notified = {fp: s for fp, s in notified.items() if fp not in resolved}
    elif alerts and last_sent is not None and \
            (now - last_sent).total_seconds() >= repeat_interval and \
            any(not r.inst.acked(now) for r in alerts.values()):
        reason = "repeat"
    if reason is None:
        if not alerts and not notified:
            if row is not None:
                conn.execute(Q.DELETE_GROUP, (key,))
            return
        if row is None or dict(row[6]) != notified:
            _store_group(conn, key, rec, created, first_due, last_sent, notified)
        return
    firing = []
    order = list(SEVERITIES)
    for fp, r in sorted(alerts.items(),
                        key=lambda kv: (order.index(kv[1].inst.severity), kv[0])):
        url = link_for(config, ack_secret, r.inst.id or 0, r.inst.episode, now) \
            if r.inst.id else None
        snap = snapshot(config, registry, r.inst, r.labels, url)
        snap["status"] = "firing"
        snap["new"] = fp in new
        firing.append(snap)
    gone = []
    for fp in resolved:
        snap = dict(notified[fp])
        snap.update(status="resolved", state="normal", state_zh=STATE_ZH["normal"],
                    ends_at=now.isoformat(), ack_url=None, new=False)
        gone.append(snap)
    message = {
        "group_key": key, "recipient": rec.id, "reason": reason,
        "status": "firing" if firing else "resolved", "language": rec.language,
        "created_at": now.isoformat(), "alerts": firing + gone,
        "enterprise_id": rec.enterprise,
    }
    message["title"] = _title(message)
    digest = hashlib.sha256(json.dumps(
        [key, reason, now.isoformat(), sorted(a["fingerprint"] for a in firing + gone)],
    ).encode()).hexdigest()[:24]
    for channel in rec.channels:
        row_id = conn.execute(Q.ENQUEUE, (
            f"{digest}:{channel}", key, rec.id, channel, rec.enterprise, reason,
            Jsonb(message), now, now)).fetchone()
        if row_id is not None:
            plan.enqueued.append({"id": row_id[0], "recipient": rec.id, "channel": channel,
                                  "reason": reason, "alerts": len(firing) + len(gone)})
    kept = {fp: s for fp, s in notified.items() if fp in muted and fp not in alerts}
    kept.update({a["fingerprint"]: {k: v for k, v in a.items() if k != "new"}
                 for a in firing})
    log.info("alerts: %s message to %s (%d firing, %d resolved)", reason, rec.id,
             len(firing), len(gone))
    if not kept:
        conn.execute(Q.DELETE_GROUP, (key,))
        return
    _store_group(conn, key, rec, created, first_due, now, kept)


def _store_group(conn: psycopg.Connection, key: str, rec: Recipient, created: datetime,
                 first_due: datetime | None, last_sent: datetime | None,
                 notified: dict[str, Any]) -> None:
    conn.execute(Q.UPSERT_GROUP, {
        "group_key": key, "recipient": rec.id, "enterprise_id": rec.enterprise,
        "created_at": created, "first_due_at": first_due, "last_sent_at": last_sent,
        "notified": Jsonb(notified)})


def _title(message: dict[str, Any]) -> str:
    alerts = message["alerts"]
    firing = [a for a in alerts if a["status"] == "firing"]
    zh = message["language"] == "zh"
    first = (firing or alerts)[0]
    who = first.get("enterprise_name") or first.get("enterprise_id") or \
        ("园区" if zh else "park")
    if zh:
        head = {"new": "告警", "escalation": "告警升级", "repeat": "告警提醒",
                "resolved": "已恢复", "test": "测试"}[message["reason"]]
        sev = f"[{first['severity_zh']}]" if firing else ""
        return f"{sev}{head} {first['rule']} {who}" + (
            f" 等{len(alerts)}条" if len(alerts) > 1 else "")
    head = {"new": "ALERT", "escalation": "ESCALATED", "repeat": "REMINDER",
            "resolved": "RESOLVED", "test": "TEST"}[message["reason"]]
    return f"[{head}] {first['rule']} {who}" + (
        f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else "")
