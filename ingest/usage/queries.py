"""SQL of parkcarbon.ingest.usage: the derivation plan, the derive run, and the
listings behind ``parkcarbon usage events|gaps``.

Every statement the usage subpackage (and the usage CLI) runs is here.
"""

from __future__ import annotations

from parkcarbon.units import SLOT_SECONDS

# --- plan: counter specs, derive state, what changed --------------------------------

SELECT_COUNTER_SPECS = (
    "SELECT id, counter_type, multiplier, rollover_value, interval_seconds FROM meters "
    "WHERE %(ids)s::text[] IS NULL OR id = ANY(%(ids)s) ORDER BY id"
)

SELECT_REPLACEMENTS = (
    "SELECT meter_id, replaced_at, final_reading, initial_reading FROM meter_replacements "
    "ORDER BY meter_id, replaced_at"
)


def select_nth_reading_before(*, inclusive: bool) -> str:
    """Time of a meter's reading n places before a time; parameters (meter, ts, n)."""
    op = "<=" if inclusive else "<"
    return (
        f"SELECT ts FROM readings WHERE meter_id = %s AND ts {op} %s "
        "ORDER BY ts DESC OFFSET %s LIMIT 1"
    )


SELECT_DERIVE_STATES = (
    "SELECT meter_id, watermark, overlap_count, spec_hash FROM usage_derive_state "
    "WHERE meter_id = ANY(%s)"
)

# Per meter: the new watermark, the first reading received after the old watermark (or
# within the overlap before it), and the overlap counts now and for the next run, all
# from one snapshot of readings.
SELECT_CHANGES = """
WITH w AS (SELECT max(received_at) AS wm FROM readings),
m AS (SELECT id AS meter_id, s.watermark, s.overlap_count
      FROM unnest(%(ids)s::text[]) AS id
      LEFT JOIN usage_derive_state s ON s.meter_id = id),
lo AS (SELECT least(min(m.watermark), (SELECT wm FROM w)) - %(overlap)s AS lo FROM m)
SELECT m.meter_id, w.wm,
       min(r.ts) FILTER (WHERE r.received_at > m.watermark) AS first_new,
       min(r.ts) FILTER (WHERE r.received_at > m.watermark - %(overlap)s) AS first_overlap,
       count(r.ts) FILTER (WHERE r.received_at > m.watermark - %(overlap)s
                           AND r.received_at <= m.watermark) AS old_count,
       count(r.ts) FILTER (WHERE r.received_at > w.wm - %(overlap)s) AS next_count
FROM m CROSS JOIN w
LEFT JOIN readings r ON r.meter_id = m.meter_id AND r.received_at > (SELECT lo FROM lo)
GROUP BY m.meter_id, w.wm
"""

# --- derive run ---------------------------------------------------------------------

# Serialises concurrent derive runs (transaction lock; key: parkcarbon.db.LockKey.DERIVE).
LOCK_DERIVE = "SELECT pg_advisory_xact_lock(%s)"

SELECT_READINGS_FROM = (
    "SELECT extract(epoch FROM ts)::float8, value FROM readings WHERE meter_id = %s "
    "AND (%s::timestamptz IS NULL OR ts >= %s) ORDER BY ts"
)

# The sender's sequence numbers of the same range, for parkcarbon.ingest.usage.sequence.
SELECT_SEQ_FROM = (
    "SELECT extract(epoch FROM ts)::float8, seq FROM readings WHERE meter_id = %s "
    "AND seq IS NOT NULL AND (%s::timestamptz IS NULL OR ts >= %s) ORDER BY ts"
)

# Scratch tables of a run, emptied at every commit (and truncated in case a caller's
# open transaction ran derive before). A slot number is its start epoch // SLOT_SECONDS.
CREATE_DERIVE_TABLES = f"""
CREATE TEMP TABLE IF NOT EXISTS derive_usage_new (
    meter_id text, slot bigint, quantity double precision, estimated boolean,
    ts timestamptz GENERATED ALWAYS AS (to_timestamp(slot * {SLOT_SECONDS})) STORED
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_events_new (
    meter_id text, kind text, ts timestamptz, ts_start timestamptz,
    value_before double precision, value_after double precision,
    quantity double precision, detail jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_ranges (
    meter_id text PRIMARY KEY, write_from timestamptz
) ON COMMIT DELETE ROWS;
TRUNCATE derive_usage_new, derive_events_new, derive_ranges;
"""

COPY_DERIVE_RANGES = "COPY derive_ranges (meter_id, write_from) FROM STDIN"
COPY_DERIVE_USAGE = "COPY derive_usage_new (meter_id, slot, quantity, estimated) FROM STDIN"
COPY_DERIVE_EVENTS = "COPY derive_events_new FROM STDIN"
ANALYZE_DERIVE_TABLES = "ANALYZE derive_ranges, derive_usage_new, derive_events_new"

DELETE_STALE_USAGE = """
DELETE FROM usage u USING derive_ranges r
WHERE u.meter_id = r.meter_id AND (r.write_from IS NULL OR u.ts >= r.write_from)
  AND NOT EXISTS (SELECT 1 FROM derive_usage_new n WHERE n.meter_id = u.meter_id
                  AND n.ts = u.ts)
RETURNING u.meter_id, u.ts
"""

# Writes only slots that differ, so an unchanged slot keeps its derived_at.
UPSERT_USAGE = """
INSERT INTO usage (meter_id, ts, quantity, estimated, derived_at)
SELECT meter_id, ts, quantity, estimated, now() FROM derive_usage_new
ON CONFLICT (meter_id, ts) DO UPDATE
SET quantity = excluded.quantity, estimated = excluded.estimated, derived_at = now()
WHERE usage.quantity IS DISTINCT FROM excluded.quantity
   OR usage.estimated IS DISTINCT FROM excluded.estimated
RETURNING meter_id, ts
"""

DELETE_STALE_EVENTS = """
DELETE FROM meter_events e USING derive_ranges r
WHERE e.meter_id = r.meter_id AND (r.write_from IS NULL OR e.ts >= r.write_from)
  AND NOT EXISTS (SELECT 1 FROM derive_events_new n WHERE n.meter_id = e.meter_id
                  AND n.kind = e.kind AND n.ts = e.ts)
"""

UPSERT_EVENTS = """
INSERT INTO meter_events (meter_id, kind, ts, ts_start, value_before, value_after,
                          quantity, detail)
SELECT meter_id, kind, ts, ts_start, value_before, value_after, quantity, detail
FROM derive_events_new
ON CONFLICT (meter_id, kind, ts) DO UPDATE
SET ts_start = excluded.ts_start, value_before = excluded.value_before,
    value_after = excluded.value_after, quantity = excluded.quantity,
    detail = excluded.detail, updated_at = now()
WHERE (meter_events.ts_start, meter_events.value_before, meter_events.value_after,
       meter_events.quantity, meter_events.detail)
  IS DISTINCT FROM (excluded.ts_start, excluded.value_before, excluded.value_after,
                    excluded.quantity, excluded.detail)
"""

INSERT_USAGE_CHANGE = (
    "INSERT INTO usage_changes (meter_id, first_slot, last_slot, slots) "
    "VALUES (%s, %s, %s, %s)"
)

SAVE_DERIVE_STATE = """
INSERT INTO usage_derive_state (meter_id, watermark, overlap_count, spec_hash, derived_at)
VALUES (%s, %s, %s, %s, now())
ON CONFLICT (meter_id) DO UPDATE SET watermark = excluded.watermark,
    overlap_count = excluded.overlap_count, spec_hash = excluded.spec_hash, derived_at = now()
"""

# --- listings: events, gaps, silent meters ------------------------------------------

SELECT_EVENTS = """
SELECT meter_id, kind, ts_start, ts, value_before, value_after, quantity, detail
FROM meter_events
WHERE (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s))
  AND (%(meter)s::text IS NULL OR meter_id = %(meter)s)
  AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)
ORDER BY ts, meter_id, kind
LIMIT %(limit)s
"""

# Active meters with no reading for more than 2 x interval_seconds (or none at all).
# Silent: no reading for more than twice the meter's interval before the newest reading
# of the park (capped at now), so a meter that stopped while the others report is
# listed, and a finished simulation or an ingest outage (every meter stopped at once)
# is not 52 silent meters but one line (PARK_LAST_READING).
SELECT_SILENT_METERS = """
WITH last AS (
    SELECT m.id, m.interval_seconds, m.active, l.ts FROM meters m
    LEFT JOIN LATERAL (SELECT max(ts) AS ts FROM readings r WHERE r.meter_id = m.id) l
           ON true
)
SELECT id, ts FROM last
WHERE active AND (%(meter)s::text IS NULL OR id = %(meter)s)
  AND (ts IS NULL OR ts < least(now(), (SELECT max(ts) FROM last WHERE active))
                          - 2 * interval_seconds * INTERVAL '1 second')
ORDER BY id
"""
# The newest reading of any active meter, and how long ago it is (``usage gaps``).
PARK_LAST_READING = """
SELECT max(l.ts), now() - max(l.ts) FROM meters m
CROSS JOIN LATERAL (SELECT max(ts) AS ts FROM readings r WHERE r.meter_id = m.id) l
WHERE m.active
"""
# Canonical unit of every meter (units of the quantities ``usage gaps`` lists).
METER_UNITS = "SELECT id, unit FROM meters"
