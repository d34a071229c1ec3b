"""SQL of parkcarbon.security: discovery of per-enterprise relations, policies, roles.

Identifiers are composed with ``psycopg.sql`` by the callers from the names these
queries return (never from user input); values always go in as parameters.
"""

from __future__ import annotations

# --- discovery ------------------------------------------------------------------------

# Tables, views and materialized views of schema public with their column names.
RELATIONS = """
SELECT c.relname, c.relkind, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
GROUP BY c.relname, c.relkind
ORDER BY c.relname
"""

HAS_TIMESCALE = "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"

# Continuous aggregates are views over a materialization hypertable that takes neither
# row-level security nor security_invoker: they get a filtered view instead.
CONTINUOUS_AGGREGATES = """
SELECT view_name FROM timescaledb_information.continuous_aggregates
WHERE view_schema = 'public'
"""

HYPERTABLES = """
SELECT hypertable_name FROM timescaledb_information.hypertables
WHERE hypertable_schema = 'public'
"""

# The policies this module owns on a relation (others' policies are left alone).
OWN_POLICIES = """
SELECT policyname FROM pg_policies
WHERE schemaname = 'public' AND tablename = %s AND policyname LIKE 'security\\_%%'
"""

# Functions the policies call (created by schema/0009_security.sql).
PARK_CHECK = "(SELECT public.security_is_park(current_user))"
ENTERPRISES = "(SELECT public.security_enterprises(current_user))::text[]"

VIEW_SCHEMA = "enterprise"
SCHEMA_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
FILTERED_VIEWS = (
    "SELECT table_name FROM information_schema.views WHERE table_schema = 'enterprise'"
)

# --- roles ----------------------------------------------------------------------------

ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = %s"
IS_SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
CURRENT_USER = "SELECT current_user"
CURRENT_DATABASE = "SELECT current_database()"
ACTIVE_ENTERPRISES = "SELECT id FROM enterprises WHERE active ORDER BY id"
ROLES_WITH_PREFIX = r"SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY rolname"

MAPPED_ROLES = "SELECT role_name, scope, enterprise_id FROM security_roles ORDER BY role_name"
UPSERT_MAPPING = """
INSERT INTO security_roles (role_name, scope, enterprise_id) VALUES (%s, %s, %s)
ON CONFLICT (role_name) DO UPDATE
SET scope = excluded.scope, enterprise_id = excluded.enterprise_id, updated_at = now()
WHERE (security_roles.scope, security_roles.enterprise_id)
      IS DISTINCT FROM (excluded.scope, excluded.enterprise_id)
"""
MAP_CURRENT_USER_AS_PARK = """
INSERT INTO security_roles (role_name, scope) VALUES (current_user, 'park')
ON CONFLICT (role_name) DO UPDATE SET scope = 'park', enterprise_id = NULL, updated_at = now()
WHERE security_roles.scope <> 'park'
"""
DELETE_MAPPING = "DELETE FROM security_roles WHERE role_name = %s"

# Tables ingest writes (and the registry it reads). Anything else it cannot touch:
# in particular no emissions, economics or reports.
INGEST_READS = (
    "park", "enterprises", "meters", "meter_replacements", "meter_ownership",
    "readings", "dead_letters", "meter_events", "parkcarbon_meta", "schema_migrations",
)
INGEST_INSERTS = ("readings", "dead_letters", "meter_events")
INGEST_UPDATES = ("dead_letters", "meter_events")
INGEST_DELETES = ("dead_letters",)
# Prefix of tables a later migration adds for ingest's own bookkeeping (sequence
# state, session watch...): ingest may read and write them.
INGEST_TABLE_PREFIX = "ingest_"

# Relations nobody but the owner reads (the role map is read through the functions).
OWNER_ONLY = ("security_roles",)
# Tables without enterprise data every enterprise may read (the rest of the tables
# without an enterprise_id or meter_id column are not granted to enterprises at all).
SHARED_TABLES = ("park", "carbon_plans", "parkcarbon_meta")
# Tables whose NULL enterprise_id rows are shared, not park-only: the factor library.
SHARED_WHEN_NULL = ("carbon_factors",)

# The owner of a relation of schema public.
RELATION_OWNER = """
SELECT pg_get_userbyid(c.relowner) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname = %s
"""
