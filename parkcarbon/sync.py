"""Copy the registry (park, enterprises, meters, replacements) into the database.

The YAML registry is the source of truth; the tables mirror it so SQL (Grafana,
reports) can join on them. Entries removed from the registry are kept and marked
``active = false``: readings and reports still refer to them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import psycopg

from parkcarbon import queries as Q
from parkcarbon.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    enterprises: int
    meters: int
    replacements: int
    deactivated_meters: int


def sync_registry(conn: psycopg.Connection, registry: Registry) -> SyncResult:
    """Upsert the registry in one transaction."""
    park = registry.park
    with conn.transaction():
        conn.execute(
            Q.UPSERT_PARK,
            (park.id, park.name, park.name_zh, park.timezone, park.land_area_mu,
             park.latitude, park.longitude),
        )
        conn.execute(Q.DELETE_OTHER_PARKS, (park.id,))
        with conn.cursor() as cur:
            cur.executemany(
                Q.UPSERT_ENTERPRISE,
                [
                    (e.id, e.name_zh, e.name_en, e.credit_code, e.sector.value,
                     e.land_area_mu,
                     json.dumps([c.model_dump(exclude_none=True) for c in e.contacts],
                                ensure_ascii=False))
                    for e in registry.enterprises
                ],
            )
            cur.executemany(
                Q.UPSERT_METER,
                [
                    (m.id, m.enterprise, m.carrier.value, m.role.value, m.counter.value,
                     m.canonical_unit, m.unit, m.multiplier,
                     None if m.rollover is None else m.rollover * m.unit_factor,
                     m.interval_seconds)
                    for m in registry.meters
                ],
            )
            ids = [m.id for m in registry.meters]
            cur.execute(
                Q.DEACTIVATE_METERS,
                (ids,),
            )
            deactivated = cur.rowcount
            cur.execute(
                Q.DEACTIVATE_ENTERPRISES,
                ([e.id for e in registry.enterprises],),
            )
            cur.execute(Q.DELETE_REPLACEMENTS, (ids,))
            rows = [
                (m.id, r.at, r.final_reading * m.unit_factor,
                 r.initial_reading * m.unit_factor, r.note)
                for m in registry.meters
                for r in m.replacements
            ]
            cur.executemany(
                Q.INSERT_REPLACEMENT,
                rows,
            )
    result = SyncResult(
        enterprises=len(registry.enterprises),
        meters=len(registry.meters),
        replacements=len(rows),
        deactivated_meters=deactivated,
    )
    log.info(
        "registry synced: %d enterprises, %d meters, %d replacements, %d deactivated",
        result.enterprises, result.meters, result.replacements, result.deactivated_meters,
    )
    return result
