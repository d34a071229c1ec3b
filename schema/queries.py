"""SQL of the migration runner and of the rollup refresh (the schema package's own)."""

from __future__ import annotations

# The runner's own bookkeeping, created before any migration.
BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS parkcarbon_meta (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    mode        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""

LOCK = "SELECT pg_advisory_lock(%s)"
UNLOCK = "SELECT pg_advisory_unlock(%s)"

SET_META = (
    "INSERT INTO parkcarbon_meta (key, value) VALUES (%s, %s) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()"
)

HAS_MIGRATIONS_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL"
APPLIED_VERSIONS = "SELECT version FROM schema_migrations"
APPLIED_CHECKSUMS = "SELECT version, checksum FROM schema_migrations"
RECORD_MIGRATION = (
    "INSERT INTO schema_migrations (version, name, checksum, mode) VALUES (%s, %s, %s, %s)"
)

# --- TimescaleDB -------------------------------------------------------------------

TIMESCALE_AVAILABLE = "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
# A setting the timescaledb loader defines only when preloaded (shared_preload_libraries
# itself is readable only by privileged roles).
TIMESCALE_PRELOADED = "SELECT current_setting('timescaledb.max_background_workers', true)"
CREATE_TIMESCALE = "CREATE EXTENSION IF NOT EXISTS timescaledb"
TIMESCALE_VERSION = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
HYPERTABLES = "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
CONTINUOUS_AGGREGATES = (
    "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1"
)
REFRESH_AGGREGATE = "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)"

# --- usage_quality_enterprise_day (0015): summed again from usage_day_quality ------

RESUM_QUALITY = "SELECT usage_quality_enterprise_day_resum(NULL, %s::timestamptz, %s::timestamptz)"
LOCK_QUALITY = "SELECT pg_advisory_xact_lock(%s)"
# Windows a derivation committed before its sum (0015): marked in its transaction,
# taken (deleted) by the sum that covers them.
MARK_QUALITY_PENDING = "INSERT INTO usage_quality_resum_pending (since) VALUES (%s)"
QUALITY_PENDING_SINCE = "SELECT min(since) FROM usage_quality_resum_pending"
TAKE_QUALITY_PENDING = "DELETE FROM usage_quality_resum_pending RETURNING since"
