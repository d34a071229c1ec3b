"""The durable side of alert instances: load, store, history, acknowledge.

Only instances that ever left ``normal`` have a row; a subject that has always been
normal costs nothing per cycle. A row is written when its state, value or settings
change, in the evaluation's transaction, together with its history rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from parkcarbon.alerts import queries as Q
from parkcarbon.alerts.constants import ACTIVE_STATES
from parkcarbon.alerts.errors import AlertsUsageError
from parkcarbon.alerts.models import Instance, Transition


def instance_from_row(row: Sequence[Any]) -> Instance:
    (iid, rule_id, subject, ent, meter, kind, sev, state, value, thr, pend, act, rec, res,
     episode, last, ack_by, ack_until, ack_comment, detail) = row
    return Instance(rule_id, subject, ent, meter, kind, sev, state, value, thr, pend, act,
                    rec, res, episode, last, ack_by, ack_until, ack_comment, dict(detail), iid)


def load_instances(conn: psycopg.Connection, rule_ids: Iterable[str]
                   ) -> dict[tuple[str, str], Instance]:
    rows = conn.execute(Q.INSTANCES_OF_RULES, {"rules": list(rule_ids)}).fetchall()
    return {(r[1], r[2]): instance_from_row(r) for r in rows}


def active_instances(conn: psycopg.Connection) -> list[Instance]:
    """Instances not normal: pending, firing, recovering, nodata, error."""
    return [instance_from_row(r) for r in conn.execute(Q.INSTANCES_NOT_NORMAL).fetchall()]


def instance(conn: psycopg.Connection, instance_id: int) -> Instance:
    row = conn.execute(Q.INSTANCE_BY_ID, {"id": instance_id}).fetchone()
    if row is None:
        raise AlertsUsageError(f"no alert with id {instance_id}",
                               hint="see `parkcarbon alerts list`")
    return instance_from_row(row)


def _params(inst: Instance) -> dict[str, Any]:
    return {
        "rule_id": inst.rule_id, "subject": inst.subject, "enterprise_id": inst.enterprise_id,
        "meter_id": inst.meter_id, "kind": inst.kind, "severity": inst.severity,
        "state": inst.state, "value": inst.value, "threshold": inst.threshold,
        "pending_since": inst.pending_since, "active_since": inst.active_since,
        "recovering_since": inst.recovering_since, "resolved_at": inst.resolved_at,
        "episode": inst.episode, "last_eval_at": inst.last_eval_at, "ack_by": inst.ack_by,
        "ack_until": inst.ack_until, "ack_comment": inst.ack_comment,
        "detail": Jsonb(inst.detail),
    }


def save(conn: psycopg.Connection, instances: Sequence[Instance],
         transitions: Sequence[Transition]) -> None:
    """Upsert ``instances`` (ids filled in) and write the history of ``transitions``."""
    with conn.cursor() as cur:
        new = [i for i in instances if i.id is None]
        old = [i for i in instances if i.id is not None]
        if old:
            cur.executemany(Q.UPSERT_INSTANCE, [_params(i) for i in old])
        if new:  # one batch, with the ids returned
            cur.executemany(Q.UPSERT_INSTANCE, [_params(i) for i in new], returning=True)
            for inst in new:
                row = cur.fetchone()
                assert row is not None
                inst.id = int(row[0])
                cur.nextset()
        if transitions:
            cur.executemany(Q.INSERT_HISTORY, [
                (t.instance.id, t.instance.enterprise_id, t.at, t.from_state, t.to_state,
                 t.instance.value, t.note or None) for t in transitions])


def acknowledge(conn: psycopg.Connection, instance_id: int, *, by: str, until: datetime,
                comment: str | None, now: datetime, episode: int | None = None) -> Instance:
    """Acknowledge an active alert until ``until``; ``AlertsUsageError`` if it is not
    active (or, with ``episode``, no longer the same episode)."""
    inst = instance(conn, instance_id)
    row = conn.execute(Q.ACK_INSTANCE, {"id": instance_id, "by": by, "until": until,
                                        "comment": comment, "episode": episode}).fetchone()
    if row is None:
        state = inst.state if inst.state not in ACTIVE_STATES else "a later episode"
        raise AlertsUsageError(f"alert {instance_id} ({inst.rule_id} {inst.subject}) is "
                               f"{state}: nothing to acknowledge")
    conn.execute(Q.INSERT_HISTORY, (instance_id, inst.enterprise_id, now, inst.state,
                                    inst.state, inst.value,
                                    f"acknowledged by {by} until {until.isoformat()}"
                                    + (f": {comment}" if comment else "")))
    return instance(conn, instance_id)
