"""Commands of parkcarbon.ingest: ``parkcarbon ingest`` and ``parkcarbon deadletters``."""

from __future__ import annotations

import click

from parkcarbon.clikit import AppContext, Column, emit_mapping, emit_rows, format_option, pass_app

# The keys of the CSV and JSON rows (the CSV header when there are none); the table
# is laid out by hand.
_DEAD_LETTER_COLUMNS: list[Column] = [
    (k, k, 0) for k in ("id", "received_at", "topic", "reason_code", "reason", "enterprise_id",
                        "meter_id", "reading_index", "payload_bytes", "payload_preview",
                        "replayed_at", "replay_result")
]
_OUTCOME_COLUMNS: list[Column] = [
    (k, k, 0) for k in ("id", "replayed", "stored", "duplicates", "still_rejected", "result")
]


@click.command("ingest")
@click.option("--client-id", envvar="PARKCARBON_MQTT_CLIENT_ID",
              help="Fixed MQTT client id of the persistent session.")
@click.option("--shared-group", envvar="PARKCARBON_MQTT_SHARED_GROUP",
              help="MQTT 5 shared-subscription group, to split load across workers.")
@pass_app
def ingest_command(app: AppContext, client_id: str | None, shared_group: str | None) -> None:
    """Take meter readings off MQTT and store them (runs until SIGTERM / Ctrl-C).

    Subscribes with QoS 1 to <prefix>/+/+ on a persistent session; acknowledges each
    message after its readings (or dead letters) are committed.
    """
    from parkcarbon.ingest.service import IngestService
    from parkcarbon.registry import load_registry

    more = {k: v for k, v in {"mqtt_client_id": client_id,
                              "mqtt_shared_group": shared_group}.items() if v}
    settings = app.settings(**more)
    registry = load_registry(settings.registry_file)
    IngestService(settings, registry).run_forever()


@click.group("deadletters")
def deadletters_group() -> None:
    """Inspect and replay messages ingest could not accept."""


@deadletters_group.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed ones.")
@click.option("--reason", "reason_code", help="Only this reason code.")
@format_option
@pass_app
def deadletters_list(app: AppContext, limit: int, include_replayed: bool,
                     reason_code: str | None, fmt: str) -> None:
    """List dead letters, newest first (open ones unless --all).

    CSV and JSON: one row per dead letter; JSON adds "counts" (by reason code).
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.deadletters import count_by_reason, list_dead_letters, table_bytes

    with connect(app.settings()) as conn:
        rows = list_dead_letters(conn, limit=limit, include_replayed=include_replayed,
                                 reason_code=reason_code)
        counts = count_by_reason(conn, include_replayed=include_replayed)
        size = table_bytes(conn)
    if fmt != "table":
        emit_rows([r.as_dict() for r in rows], fmt, _DEAD_LETTER_COLUMNS,
                  json_extra={"counts": counts, "table_bytes": size})
        return
    total = sum(counts.values())
    kind = "dead letters" if include_replayed else "open dead letters"
    click.echo(f"{total} {kind}" + (": " + ", ".join(f"{k} {v}" for k, v in counts.items())
                                   if counts else "") + f" (table {size / 1e6:.1f} MB)")
    wheres = [r.topic + (f" [{r.reading_index}]" if r.reading_index is not None else "")
              for r in rows]
    # Columns sized to the rows shown (a long topic is cut in the middle, so the reason
    # column stays aligned); the reason is last and runs on.
    width = min(max((len(w) for w in wheres), default=0), _TOPIC_WIDTH)
    code_width = max((len(r.reason_code) for r in rows), default=0)
    id_width = max((len(str(r.id)) for r in rows), default=1)
    for r, where in zip(rows, wheres, strict=True):
        state = f"  (replayed: {r.replay_result})" if r.replayed_at else (
            f"  (last replay: {r.replay_result})" if r.replay_result else "")
        click.echo(f"{r.id:>{id_width}}  {r.received_at:%Y-%m-%dT%H:%M:%SZ}  "
                   f"{r.reason_code:<{code_width}}  {_cut(where, width):<{width}}  "
                   f"{r.reason}{state}")


_TOPIC_WIDTH = 48


def _cut(text: str, width: int) -> str:
    """``text`` at most ``width`` characters, cut in the middle with an ellipsis."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


@deadletters_group.command("purge")
@click.option("--older-than-days", type=click.FloatRange(min=0, min_open=True),
              help="Retention in days (default: the dead_letter_retention_days setting).")
@format_option
@pass_app
def deadletters_purge(app: AppContext, older_than_days: float | None, fmt: str) -> None:
    """Delete dead letters replayed, or received, longer ago than the retention.

    `parkcarbon run` does this daily (job purge_dead_letters).
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.deadletters import purge_dead_letters, table_bytes

    settings = app.settings()
    days = older_than_days or settings.dead_letter_retention_days
    with connect(settings) as conn:
        purged = purge_dead_letters(conn, retention_days=days)
        size = table_bytes(conn)
    result = {"purged": purged, "retention_days": days, "table_bytes": size}
    emit_mapping(result, fmt, lambda: iter([
        f"purged {purged} dead letter(s) older than {days:g} days; "
        f"table now {size / 1e6:.1f} MB"]))


@deadletters_group.command("replay")
@click.option("--id", "ids", multiple=True, type=int, help="Dead letter id (repeatable); "
              "default: every open one.")
@click.option("--limit", type=click.IntRange(min=1), help="Replay at most this many.")
@format_option
@pass_app
def deadletters_replay(app: AppContext, ids: tuple[int, ...], limit: int | None,
                       fmt: str) -> None:
    """Re-parse stored payloads with the current registry and store what now passes.

    Fix the registry first (then `parkcarbon db migrate` to sync it). CSV and JSON: one
    row per dead letter tried; JSON adds the totals.
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.deadletters import replay_dead_letters
    from parkcarbon.ingest.parse import Parser
    from parkcarbon.registry import load_registry

    settings = app.settings()
    parser = Parser.from_settings(load_registry(settings.registry_file), settings)
    with connect(settings) as conn:
        outcomes = replay_dead_letters(conn, parser, ids=list(ids) or None, limit=limit)
    replayed = sum(o.replayed for o in outcomes)
    stored = sum(o.stored for o in outcomes)
    if fmt != "table":
        emit_rows([o.as_dict() for o in outcomes], fmt, _OUTCOME_COLUMNS, json_extra={
            "replayed": replayed, "still_open": len(outcomes) - replayed,
            "readings_stored": stored})
        return
    for o in outcomes:
        click.echo(f"{o.id:>7}  {'replayed' if o.replayed else 'open    '}  {o.result}")
    click.echo(f"{replayed} of {len(outcomes)} dead letter(s) replayed, "
               f"{stored} reading(s) stored")
