"""Commands of parkcarbon.ingest: ``parkcarbon ingest`` and ``parkcarbon deadletters``."""

from __future__ import annotations

import click

from parkcarbon.clikit import AppContext, Column, emit_rows, format_option, pass_app

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
    from parkcarbon.ingest.deadletters import count_by_reason, list_dead_letters

    with connect(app.settings()) as conn:
        rows = list_dead_letters(conn, limit=limit, include_replayed=include_replayed,
                                 reason_code=reason_code)
        counts = count_by_reason(conn, include_replayed=include_replayed)
    if fmt != "table":
        emit_rows([r.as_dict() for r in rows], fmt, _DEAD_LETTER_COLUMNS,
                  json_extra={"counts": counts})
        return
    total = sum(counts.values())
    kind = "dead letters" if include_replayed else "open dead letters"
    click.echo(f"{total} {kind}" + (": " + ", ".join(f"{k} {v}" for k, v in counts.items())
                                   if counts else ""))
    for r in rows:
        where = r.topic + (f" [{r.reading_index}]" if r.reading_index is not None else "")
        state = f"  (replayed: {r.replay_result})" if r.replayed_at else (
            f"  (last replay: {r.replay_result})" if r.replay_result else "")
        click.echo(f"{r.id:>7}  {r.received_at:%Y-%m-%dT%H:%M:%SZ}  {r.reason_code:<18} "
                   f"{where}  {r.reason}{state}")


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
