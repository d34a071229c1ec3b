"""SQL of the foundations: the registry mirror and the schema's own metadata.

Every feature package keeps its SQL in a ``queries`` module of its own; this one holds
what ``parkcarbon.db`` and ``parkcarbon.sync`` run.
"""

from __future__ import annotations

# --- parkcarbon_meta (written by the migration runner, read by everyone) ------------

META_VALUE = "SELECT value FROM parkcarbon_meta WHERE key = %s"

# --- registry sync -----------------------------------------------------------------

UPSERT_PARK = """
INSERT INTO park (id, name, name_zh, timezone, land_area_mu, latitude, longitude)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_zh = excluded.name_zh,
    timezone = excluded.timezone, land_area_mu = excluded.land_area_mu,
    latitude = excluded.latitude, longitude = excluded.longitude,
    updated_at = now()
"""

DELETE_OTHER_PARKS = "DELETE FROM park WHERE id <> %s"

UPSERT_ENTERPRISE = """
INSERT INTO enterprises (id, name_zh, name_en, credit_code, sector,
                         land_area_mu, contacts, active)
VALUES (%s, %s, %s, %s, %s, %s, %s, true)
ON CONFLICT (id) DO UPDATE SET name_zh = excluded.name_zh,
    name_en = excluded.name_en, credit_code = excluded.credit_code,
    sector = excluded.sector, land_area_mu = excluded.land_area_mu,
    contacts = excluded.contacts, active = true, updated_at = now()
"""

UPSERT_METER = """
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
"""

ACTIVE_METER_IDS = "SELECT id FROM meters WHERE active ORDER BY id"

DEACTIVATE_METERS = (
    "UPDATE meters SET active = false, updated_at = now() WHERE active AND NOT (id = ANY(%s))"
)

DEACTIVATE_ENTERPRISES = (
    "UPDATE enterprises SET active = false, updated_at = now() "
    "WHERE active AND NOT (id = ANY(%s))"
)

DELETE_REPLACEMENTS = "DELETE FROM meter_replacements WHERE meter_id = ANY(%s)"

INSERT_REPLACEMENT = (
    "INSERT INTO meter_replacements (meter_id, replaced_at, final_reading, initial_reading, note) "
    "VALUES (%s, %s, %s, %s, %s)"
)
