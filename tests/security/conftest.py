"""A migrated database with its own role set (prefix ``pct<hex>``), seeded with rows of
two enterprises and the park; the database and every role are dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from parkcarbon.security import drop_roles, ensure_roles, roles
from parkcarbon.settings import Settings, load_settings
from support import ADMIN_DSN, EXAMPLE_REGISTRY

E1, E2 = "E01", "E02"

SEED = """
INSERT INTO readings (meter_id, ts, value)
SELECT m.id, now() - i * interval '15 minutes', i
FROM meters m, generate_series(1, 8) i WHERE m.enterprise_id IN ('E01', 'E02');
INSERT INTO usage (meter_id, ts, quantity)
SELECT m.id, date_bin('15 minutes', now() - interval '3 hours', 'epoch'::timestamptz)
              - i * interval '15 minutes', 1
FROM meters m, generate_series(1, 8) i WHERE m.enterprise_id IN ('E01', 'E02');
INSERT INTO meter_events (meter_id, kind, ts)
SELECT id, 'gap', now() - interval '1 hour' FROM meters WHERE enterprise_id IN ('E01', 'E02');
INSERT INTO dead_letters (topic, payload, reason_code, reason, enterprise_id, meter_id)
VALUES ('park/E01/x', 'x', 'bad', 'bad', 'E01', NULL),
       ('park/E02/x', 'x', 'bad', 'bad', 'E02', NULL),
       ('park/zz', 'x', 'bad', 'bad', NULL, NULL);
INSERT INTO carbon_plans (plan_id, factor_ids, flags) VALUES (1, '{}', '{}');
SELECT setval(pg_get_serial_sequence('carbon_plans', 'plan_id'), 1);
INSERT INTO emissions_daily (meter_id, day, enterprise_id, carrier, role, scope, quantity,
    unit, co2_location_t, co2_market_t, tce_equivalent, estimated, slots, plan_id, run_id,
    computed_at)
SELECT id, current_date - 1, enterprise_id, carrier, role, '2', 100, unit, 1, 1, 1, false,
       96, 1, 1, now()
FROM meters WHERE enterprise_id IN ('E01', 'E02') AND role = 'grid_import';
INSERT INTO enterprise_economics (enterprise_id, month, value_added_10k_cny)
VALUES ('E01', date_trunc('month', current_date), 10),
       ('E02', date_trunc('month', current_date), 20);
INSERT INTO carbon_budgets (month, enterprise_id, cap_co2_t, budget_co2_t, basis, profile,
                            cap_source)
VALUES (date_trunc('month', current_date), NULL, 1000, 80, 'location', 'days', 'annual'),
       (date_trunc('month', current_date), 'E01', 100, 8, 'location', 'days', 'annual'),
       (date_trunc('month', current_date), 'E02', 200, 16, 'location', 'days', 'annual');
"""


@dataclass
class SecuredDb:
    dsn: str  # the superuser's
    settings: Settings
    storage_mode: str

    def role_dsn(self, role: str) -> str:
        password = roles.read_secret(roles.password_file(self.settings, role))
        return conninfo.make_conninfo(self.dsn, user=role, password=password)

    def connect(self, role: str, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.role_dsn(role), **kwargs)  # type: ignore[arg-type]

    def meters_of(self, enterprise_id: str) -> set[str]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("SELECT id FROM meters WHERE enterprise_id = %s",
                                (enterprise_id,)).fetchall()
        return {r[0] for r in rows}


def drop_database_and_roles(dsn: str, prefix: str) -> None:
    name = conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(str(name))))
        drop_roles(admin, prefix)


def make_settings(dsn: str, tmp_path: Path, storage_mode: str, **more: object) -> Settings:
    return load_settings(
        database_url=dsn, db_role_prefix=f"pct{uuid.uuid4().hex[:10]}",
        secrets_dir=tmp_path / "secrets", storage_mode=storage_mode,
        registry_file=EXAMPLE_REGISTRY, **more,
    )


@pytest.fixture
def secured_db(fresh_dsn: str, tmp_path: Path, storage_mode: str) -> Iterator[SecuredDb]:
    from parkcarbon.db import connect
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate, refresh_rollups
    from parkcarbon.sync import sync_registry

    settings = make_settings(fresh_dsn, tmp_path, storage_mode)
    try:
        migrate(settings, mode=storage_mode, timezone="Asia/Shanghai", create_database=False)
        with connect(settings) as conn:
            sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
        ensure_roles(settings)
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            conn.execute(SEED)
            conn.execute("ANALYZE")
        refresh_rollups(fresh_dsn)
        yield SecuredDb(dsn=fresh_dsn, settings=settings, storage_mode=storage_mode)
    finally:
        drop_database_and_roles(fresh_dsn, settings.db_role_prefix)
