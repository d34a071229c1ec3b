"""Copy the registry (park, enterprises, meters, replacements) into the database.

The YAML registry is the source of truth; the tables mirror it so SQL (Grafana,
reports) can join on them. Entries removed from the registry are kept and marked
``active = false``: readings and reports still refer to them.

Deactivating a meter makes ingest dead-letter every reading it sends, so a sync that
would deactivate more than a small share of the active meters (``MAX_DEACTIVATE_SHARE``,
at least one meter is always allowed) is refused unless ``allow_deactivate`` says so
(``parkcarbon db migrate --allow-deactivate``): a truncated or mangled registry file
must not silently switch the park off. What a sync deactivates is logged at WARNING.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import psycopg

from parkcarbon import queries as Q
from parkcarbon.errors import ConfigError
from parkcarbon.registry import Registry

log = logging.getLogger(__name__)

# A sync may deactivate at most this share of the active meters (and always one) unless
# confirmed: retiring a meter or two is routine, a tenth of the park at once is a mistake
# far more often than a decision.
MAX_DEACTIVATE_SHARE = 0.10


@dataclass(frozen=True)
class SyncResult:
    enterprises: int
    meters: int
    replacements: int
    deactivated_meters: int


def deactivation_limit(active: int) -> int:
    """How many of ``active`` meters one sync may deactivate without confirmation."""
    return max(1, int(active * MAX_DEACTIVATE_SHARE))


def sync_registry(conn: psycopg.Connection, registry: Registry, *,
                  allow_deactivate: bool = False) -> SyncResult:
    """Upsert the registry in one transaction.

    Raises ``ConfigError`` (nothing changed) when it would deactivate more than
    ``deactivation_limit`` of the active meters and ``allow_deactivate`` is false.
    """
    park = registry.park
    with conn.transaction():
        active = [r[0] for r in conn.execute(Q.ACTIVE_METER_IDS).fetchall()]
        keep = {m.id for m in registry.meters}
        leaving = [m for m in active if m not in keep]
        limit = deactivation_limit(len(active))
        if len(leaving) > limit and not allow_deactivate:
            shown = ", ".join(leaving[:5]) + (", ..." if len(leaving) > 5 else "")
            raise ConfigError(
                f"{registry.source}: syncing it would deactivate {len(leaving)} of the "
                f"{len(active)} active meters ({shown}); their readings would all be "
                f"dead-lettered. Refused (more than {limit} needs confirmation)",
                hint="check the registry file (a missing or repeated section?); if it is "
                "intended, run `parkcarbon db migrate --allow-deactivate`")
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
    if leaving:
        log.warning("registry sync deactivated %d meter(s) no longer in %s: %s; ingest "
                    "dead-letters their readings from now on", len(leaving),
                    registry.source, ", ".join(leaving))
    return result
