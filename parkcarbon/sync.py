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
            """
            INSERT INTO park (id, name, name_zh, timezone, land_area_mu, latitude, longitude)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_zh = excluded.name_zh,
                timezone = excluded.timezone, land_area_mu = excluded.land_area_mu,
                latitude = excluded.latitude, longitude = excluded.longitude,
                updated_at = now()
            """,
            (park.id, park.name, park.name_zh, park.timezone, park.land_area_mu,
             park.latitude, park.longitude),
        )
        conn.execute("DELETE FROM park WHERE id <> %s", (park.id,))
        with conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO enterprises (id, name_zh, name_en, credit_code, sector,
                                         land_area_mu, contacts, active)
                VALUES (%s, %s, %s, %s, %s, %s, %s, true)
                ON CONFLICT (id) DO UPDATE SET name_zh = excluded.name_zh,
                    name_en = excluded.name_en, credit_code = excluded.credit_code,
                    sector = excluded.sector, land_area_mu = excluded.land_area_mu,
                    contacts = excluded.contacts, active = true, updated_at = now()
                """,
                [
                    (e.id, e.name_zh, e.name_en, e.credit_code, e.sector.value,
                     e.land_area_mu,
                     json.dumps([c.model_dump(exclude_none=True) for c in e.contacts],
                                ensure_ascii=False))
                    for e in registry.enterprises
                ],
            )
            cur.executemany(
                """
                INSERT INTO meters (id, enterprise_id, carrier, role, counter_type, unit,
                                    reported_unit, multiplier, rollover_value,
                                    interval_seconds, active)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true)
                ON CONFLICT (id) DO UPDATE SET enterprise_id = excluded.enterprise_id,
                    carrier = excluded.carrier, role = excluded.role,
                    counter_type = excluded.counter_type, unit = excluded.unit,
                    reported_unit = excluded.reported_unit, multiplier = excluded.multiplier,
                    rollover_value = excluded.rollover_value,
                    interval_seconds = excluded.interval_seconds, active = true,
                    updated_at = now()
                """,
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
                "UPDATE meters SET active = false, updated_at = now() "
                "WHERE active AND NOT (id = ANY(%s))",
                (ids,),
            )
            deactivated = cur.rowcount
            cur.execute(
                "UPDATE enterprises SET active = false, updated_at = now() "
                "WHERE active AND NOT (id = ANY(%s))",
                ([e.id for e in registry.enterprises],),
            )
            cur.execute("DELETE FROM meter_replacements WHERE meter_id = ANY(%s)", (ids,))
            rows = [
                (m.id, r.at, r.final_reading * m.unit_factor,
                 r.initial_reading * m.unit_factor, r.note)
                for m in registry.meters
                for r in m.replacements
            ]
            cur.executemany(
                "INSERT INTO meter_replacements (meter_id, replaced_at, final_reading, "
                "initial_reading, note) VALUES (%s, %s, %s, %s, %s)",
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
