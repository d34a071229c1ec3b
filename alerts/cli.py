"""``parkcarbon alerts``: check the rules file, evaluate, list, acknowledge, silence,
test a channel, show deliveries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from parkcarbon.alerts.errors import AlertsUsageError
from parkcarbon.alerts.models import AlertsConfig, parse_duration
from parkcarbon.clikit import AppContext, emit_mapping, emit_rows, format_option, pass_app
from parkcarbon.periods import utc_now


def _config(app: AppContext, *, with_registry: bool = True) -> tuple[Any, Any, AlertsConfig]:
    from parkcarbon.alerts.rules import load_alerts
    from parkcarbon.registry import load_registry

    settings = app.settings()
    registry = load_registry(settings.registry_file) if with_registry else None
    return settings, registry, load_alerts(settings.alerts_file, registry)


def parse_time(value: str, tz: Any, option: str = "--at") -> datetime:
    """ISO 8601; without an offset the time is the park's local time."""
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AlertsUsageError(f"{option} {value!r} is not a time (ISO 8601, e.g. "
                               "2026-10-15T08:00 or 2026-10-15T00:00Z)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.astimezone(UTC)


def _duration(value: str, option: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise AlertsUsageError(f"{option}: {exc}") from None
    if seconds <= 0:
        raise AlertsUsageError(f"{option}: must be longer than zero")
    return seconds


@click.group("alerts")
def alerts_group() -> None:
    """Alert rules, their state, acknowledgements, silences and deliveries."""


@alerts_group.command("check")
@click.option("--skip-secrets", is_flag=True,
              help="Do not check that secret references resolve (env set, file readable).")
@format_option
@pass_app
def check_command(app: AppContext, skip_secrets: bool, fmt: str) -> None:
    """Validate the alerts file (setting alerts_file) against the registry; every problem
    is listed, each naming file, entry and field (exit 3)."""
    from collections import Counter

    from parkcarbon.alerts.errors import AlertsConfigError
    from parkcarbon.alerts.rules import secret_problems

    _, _, config = _config(app)
    if not skip_secrets:
        problems = secret_problems(config)
        if problems:
            raise AlertsConfigError(problems, hint="set the variables or create the files, "
                                    "or check the file alone with --skip-secrets")
    kinds = Counter(getattr(r, "kind") for r in config.rules)  # noqa: B009
    data = {
        "file": config.source, "ok": True, "rules": len(config.rules),
        "rules_by_kind": dict(sorted(kinds.items())), "channels": len(config.channels),
        "recipients": len(config.recipients), "routes": len(config.routes),
        "inhibitions": len(config.inhibit),
    }
    emit_mapping(data, fmt, lambda: [
        f"{config.source}: ok — {len(config.rules)} rules "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
        f"{len(config.channels)} channels, {len(config.recipients)} recipients, "
        f"{len(config.routes)} routes, {len(config.inhibit)} inhibitions"])


@alerts_group.command("evaluate")
@click.option("--at", "at", help="Evaluate at this time (ISO 8601; local time without an "
              "offset). Default: now.")
@click.option("--no-send", is_flag=True, help="Evaluate and enqueue, but do not deliver.")
@format_option
@pass_app
def evaluate_command(app: AppContext, at: str | None, no_send: bool, fmt: str) -> None:
    """Run one alert cycle: derive new usage, evaluate every rule, enqueue and deliver."""
    from parkcarbon.alerts.engine import run_cycle
    from parkcarbon.ingest.usage.derive import derive_committed

    settings, registry, config = _config(app)
    now = parse_time(at, settings.tz) if at else utc_now()
    derive_committed(settings)
    result = run_cycle(settings, registry, config, now, send=not no_send)
    data = {"at": now.isoformat(), **result.summary(),
            "changes": [{"rule": t.instance.rule_id, "subject": t.instance.subject,
                         "from": t.from_state, "to": t.to_state, "value": t.instance.value}
                        for t in result.transitions]}

    def text() -> list[str]:
        s = result.summary()
        if not s["evaluated"]:
            return ["another instance is evaluating; nothing done"]
        lines = [f"{now.isoformat()}: {s['rules']} rules, {s['subjects']} subjects, "
                 f"{s['transitions']} changes ({s['firing']} firing, {s['resolved']} "
                 f"resolved), {s['messages_enqueued']} messages enqueued, {s['sent']} sent"
                 + (f", {s['failed']} failed" if s["failed"] else "")]
        lines += [f"  {c['rule']} {c['subject']}: {c['from']} -> {c['to']}"
                  for c in data["changes"]]
        lines += [f"  rule {r}: {e}" for r, e in s["errors"].items()]
        return lines

    emit_mapping(data, fmt, text)


_INSTANCE_COLUMNS = [("id", "id", 0), ("state", "state", 0), ("severity", "severity", 0),
                     ("rule", "rule", 0), ("subject", "subject", 0),
                     ("enterprise", "enterprise", 0), ("value", "value", 2),
                     ("threshold", "threshold", 2), ("since", "since", 0),
                     ("acked_by", "acked by", 0), ("ack_until", "ack until", 0)]


@alerts_group.command("list")
@click.option("--state", "states", multiple=True,
              type=click.Choice(["pending", "firing", "recovering", "nodata", "error",
                                 "normal", "active"]),
              help="Only these states (repeatable; `active`: firing, recovering, nodata, "
              "error). Default: every state but normal.")
@click.option("--enterprise", help="Only this enterprise's alerts.")
@format_option
@pass_app
def list_command(app: AppContext, states: tuple[str, ...], enterprise: str | None,
                 fmt: str) -> None:
    """Alert instances with their state, value and acknowledgement."""
    from parkcarbon.alerts import queries as Q
    from parkcarbon.alerts.state import instance_from_row
    from parkcarbon.db import connect

    wanted = set(states) or {"pending", "firing", "recovering", "nodata", "error"}
    if "active" in wanted:
        wanted = (wanted - {"active"}) | {"firing", "recovering", "nodata", "error"}
    with connect(app.settings()) as conn:
        rows = [instance_from_row(r) for r in conn.execute(
            Q.LIST_INSTANCES, {"states": sorted(wanted), "enterprise": enterprise})]
    out = [{"id": i.id, "state": i.state, "severity": i.severity, "rule": i.rule_id,
            "subject": i.subject, "enterprise": i.enterprise_id, "meter": i.meter_id,
            "value": i.value, "threshold": i.threshold,
            "since": i.active_since or i.pending_since, "episode": i.episode,
            "acked_by": i.ack_by, "ack_until": i.ack_until, "ack_comment": i.ack_comment}
           for i in rows]
    emit_rows(out, fmt, _INSTANCE_COLUMNS, empty="no alerts")


@alerts_group.command("history")
@click.option("--enterprise", help="Only this enterprise's alerts.")
@click.option("--alert", "alert_id", type=int, help="Only this alert instance.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@format_option
@pass_app
def history_command(app: AppContext, enterprise: str | None, alert_id: int | None,
                    limit: int, fmt: str) -> None:
    """State changes and acknowledgements, newest first."""
    from parkcarbon.alerts import queries as Q
    from parkcarbon.db import connect

    with connect(app.settings()) as conn:
        rows = conn.execute(Q.HISTORY, {"enterprise": enterprise, "instance": alert_id,
                                        "limit": limit}).fetchall()
    keys = ("history_id", "at", "alert", "rule", "subject", "enterprise", "from", "to",
            "value", "note")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    emit_rows(out, fmt, [("at", "at", 0), ("alert", "alert", 0), ("rule", "rule", 0),
                         ("subject", "subject", 0), ("from", "from", 0), ("to", "to", 0),
                         ("value", "value", 2), ("note", "note", 0)], empty="no history")


@alerts_group.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", "by", required=True, help="Who acknowledges.")
@click.option("--for", "for_", default="4h", show_default=True,
              help="How long the acknowledgement holds (30m, 4h, 2d).")
@click.option("--comment", help="Why, or what is being done.")
@format_option
@pass_app
def ack_command(app: AppContext, alert_id: int, by: str, for_: str, comment: str | None,
                fmt: str) -> None:
    """Acknowledge an active alert: no repeats and no escalation until the
    acknowledgement expires or the alert resolves."""
    from parkcarbon.alerts.state import acknowledge
    from parkcarbon.db import connect

    seconds = _duration(for_, "--for")
    now = utc_now()
    with connect(app.settings()) as conn:
        inst = acknowledge(conn, alert_id, by=by, until=now + timedelta(seconds=seconds),
                           comment=comment, now=now)
        conn.commit()
    emit_mapping({"id": inst.id, "rule": inst.rule_id, "subject": inst.subject,
                  "acked_by": inst.ack_by, "ack_until": inst.ack_until}, fmt,
                 lambda: [f"alert {inst.id} ({inst.rule_id} {inst.subject}) acknowledged by "
                          f"{by} until {inst.ack_until:%Y-%m-%d %H:%M} UTC"])


# --- silences ------------------------------------------------------------------------

_MATCHER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$")


def parse_matcher(text: str) -> dict[str, str]:
    m = _MATCHER.match(text.strip())
    if not m:
        raise AlertsUsageError(f"--match {text!r} is not label=value (or !=, =~, !~), e.g. "
                               "--match enterprise=E01 --match rule=meter-offline")
    label, op, value = m.groups()
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise AlertsUsageError(f"--match {text!r}: bad regular expression: {exc}") from None
    return {"label": label, "op": op, "value": value}


@alerts_group.group("silence")
def silence_group() -> None:
    """Silences: matchers and a time window in which matching alerts send nothing."""


@silence_group.command("add")
@click.option("--match", "matchers", multiple=True, required=True,
              help="label=value, label!=value, label=~regex (repeatable; all must match). "
              "Labels: rule, kind, severity, enterprise, meter, subject.")
@click.option("--for", "for_", help="Duration from the start (2h, 1d).")
@click.option("--until", "until", help="End time (ISO 8601, local without offset).")
@click.option("--start", "start", help="Start time (default now).")
@click.option("--by", "author", required=True, help="Who adds it.")
@click.option("--reason", required=True, help="Why (maintenance, known fault...).")
@format_option
@pass_app
def silence_add(app: AppContext, matchers: tuple[str, ...], for_: str | None,
                until: str | None, start: str | None, author: str, reason: str,
                fmt: str) -> None:
    """Add a silence."""
    from psycopg.types.json import Jsonb

    from parkcarbon.alerts import queries as Q
    from parkcarbon.db import connect

    settings = app.settings()
    parsed = [parse_matcher(m) for m in matchers]
    t0 = parse_time(start, settings.tz, "--start") if start else utc_now()
    if (for_ is None) == (until is None):
        raise AlertsUsageError("give exactly one of --for or --until")
    t1 = t0 + timedelta(seconds=_duration(for_, "--for")) if for_ else \
        parse_time(until or "", settings.tz, "--until")
    if t1 <= t0:
        raise AlertsUsageError("--until must be after the start")
    ents = [m["value"] for m in parsed if m["label"] == "enterprise" and m["op"] == "="]
    with connect(settings) as conn:
        row = conn.execute(Q.ADD_SILENCE, (ents[0] if len(ents) == 1 else None, Jsonb(parsed),
                                           t0, t1, author, reason)).fetchone()
        conn.commit()
    assert row is not None
    emit_mapping({"id": row[0], "matchers": parsed, "starts_at": t0, "ends_at": t1}, fmt,
                 lambda: [f"silence {row[0]} until {t1:%Y-%m-%d %H:%M} UTC: "
                          + ", ".join(f"{m['label']}{m['op']}{m['value']}" for m in parsed)])


@silence_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Expired ones too.")
@format_option
@pass_app
def silence_list(app: AppContext, show_all: bool, fmt: str) -> None:
    """Silences in force or to come (with --all, every silence)."""
    from parkcarbon.alerts import queries as Q
    from parkcarbon.db import connect

    with connect(app.settings()) as conn:
        rows = conn.execute(Q.LIST_SILENCES, {"all": show_all, "now": utc_now()}).fetchall()
    keys = ("id", "enterprise", "matchers", "starts_at", "ends_at", "author", "reason",
            "created_at", "expired_at")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for r in out:
        r["match"] = ", ".join(f"{m['label']}{m['op']}{m['value']}" for m in r["matchers"])
        if fmt != "json":
            r["matchers"] = json.dumps(r["matchers"], ensure_ascii=False)
    emit_rows(out, fmt, [("id", "id", 0), ("match", "match", 0), ("starts_at", "from", 0),
                         ("ends_at", "until", 0), ("author", "by", 0),
                         ("reason", "reason", 0), ("expired_at", "expired", 0)],
              empty="no silences")


@silence_group.command("expire")
@click.argument("silence_id", type=int)
@format_option
@pass_app
def silence_expire(app: AppContext, silence_id: int, fmt: str) -> None:
    """End a silence now."""
    from parkcarbon.alerts import queries as Q
    from parkcarbon.db import connect

    with connect(app.settings()) as conn:
        row = conn.execute(Q.EXPIRE_SILENCE, {"id": silence_id, "now": utc_now()}).fetchone()
        conn.commit()
    if row is None:
        raise AlertsUsageError(f"no silence {silence_id} in force",
                               hint="see `parkcarbon alerts silence list`")
    emit_mapping({"id": silence_id, "expired": True}, fmt,
                 lambda: [f"silence {silence_id} expired"])


# --- channels ------------------------------------------------------------------------


@alerts_group.command("test")
@click.option("--channel", "channel_id", required=True, help="Channel id from the alerts file.")
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@format_option
@pass_app
def test_command(app: AppContext, channel_id: str, language: str, fmt: str) -> None:
    """Send a test message on one channel now and print what the provider answered."""
    from parkcarbon.alerts.errors import DeliveryError
    from parkcarbon.alerts.notify import notifier_for
    from parkcarbon.alerts.templates import Renderer

    settings, _, config = _config(app)
    try:
        channel = config.channel(channel_id)
    except KeyError:
        raise AlertsUsageError(f"--channel {channel_id!r}: no such channel in "
                               f"{config.source}") from None
    message = test_message(channel_id, getattr(channel, "enterprise", None), language)
    notifier = notifier_for(channel, settings, Renderer(settings.tz))
    try:
        detail = notifier.send([message])
    except DeliveryError as exc:
        raise DeliveryError(f"channel {channel_id}: {exc.detail}") from exc
    emit_mapping({"channel": channel_id, "ok": True, "detail": detail}, fmt,
                 lambda: [f"channel {channel_id}: sent ({detail})"])


def test_message(channel_id: str, enterprise: str | None, language: str) -> dict[str, Any]:
    now = utc_now().isoformat()
    alert = {
        "fingerprint": "0" * 16, "instance_id": 0, "episode": 0, "rule": "test",
        "kind": "test", "severity": "info", "severity_zh": "提示", "state": "firing",
        "state_zh": "测试", "subject": enterprise or "PARK", "enterprise_id": enterprise,
        "enterprise_name": None, "meter_id": None, "value": None, "threshold": None,
        "description": "parkcarbon 通道测试" if language == "zh" else "parkcarbon channel test",
        "starts_at": now, "acked_by": None, "ack_until": None, "ack_url": None,
        "grafana_url": None, "status": "firing", "new": True,
        "labels": {"alertname": "test", "rule": "test", "severity": "info",
                   "enterprise": enterprise or ""},
        "detail": {},
    }
    m = {"group_key": f"test|channel={channel_id}", "recipient": channel_id,
         "reason": "test", "status": "firing", "language": language, "created_at": now,
         "alerts": [alert], "enterprise_id": enterprise}
    m["title"] = (f"测试 parkcarbon 告警通道 {channel_id}" if language == "zh"
                  else f"[TEST] parkcarbon alert channel {channel_id}")
    return m


@alerts_group.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]))
@click.option("--enterprise", help="Only messages to this enterprise's recipients.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--attempts", "with_attempts", is_flag=True,
              help="With every attempt (JSON and CSV only add them as a field).")
@format_option
@pass_app
def deliveries_command(app: AppContext, status: str | None, enterprise: str | None,
                       limit: int, with_attempts: bool, fmt: str) -> None:
    """The outbox: every message, its channel, status and attempts, newest first."""
    from parkcarbon.alerts import queries as Q
    from parkcarbon.db import connect

    with connect(app.settings()) as conn:
        rows = conn.execute(Q.DELIVERIES, {"enterprise": enterprise, "status": status,
                                           "limit": limit}).fetchall()
        attempts: dict[int, list[dict[str, Any]]] = {}
        if with_attempts and rows:
            for oid, at, ok, detail, ms, worker in conn.execute(
                    Q.ATTEMPTS_OF, {"ids": [r[0] for r in rows]}):
                attempts.setdefault(oid, []).append(
                    {"at": at.isoformat(), "ok": ok, "detail": detail,
                     "duration_ms": round(ms, 1), "worker": worker})
    keys = ("id", "created_at", "recipient", "channel", "enterprise", "reason", "status",
            "attempts", "next_attempt_at", "sent_at", "last_error", "title")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    if with_attempts:
        for r in out:
            tries = attempts.get(r["id"], [])
            r["tries"] = tries if fmt == "json" else json.dumps(tries, ensure_ascii=False)
    emit_rows(out, fmt, [("id", "id", 0), ("created_at", "created", 0),
                         ("recipient", "recipient", 0), ("channel", "channel", 0),
                         ("reason", "reason", 0), ("status", "status", 0),
                         ("attempts", "tries", 0), ("sent_at", "sent", 0),
                         ("last_error", "last error", 0)], empty="no deliveries")
