"""Hand-written attacks as an enterprise role on a real PostgreSQL: none of another
enterprise's rows comes back, nothing can be written. Park roles keep their rights."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from parkcarbon.security import roles
from parkcarbon.security.rls import discover

from .conftest import E1, E2, SecuredDb

DENIED = (psycopg.errors.InsufficientPrivilege,)


def _visible_relations(db: SecuredDb) -> list[tuple[str, str]]:
    """(schema, relation) an enterprise role may query: tables and views of public plus
    the filtered stand-ins of schema enterprise."""
    with psycopg.connect(db.dsn) as conn:
        rels = [("public", r.name) for r in discover(conn)]
        rels += [("enterprise", r[0]) for r in conn.execute(
            "SELECT table_name FROM information_schema.views "
            "WHERE table_schema = 'enterprise'").fetchall()]
    return rels


def _check_rows(conn: psycopg.Connection, schema: str, rel: str, own_meters: set[str],
                ) -> int:
    """Rows of one relation as the connected role; asserts each is the caller's."""
    cur = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, rel)))
    names = [c.name for c in cur.description or []]
    rows = cur.fetchall()
    for row in rows:
        values = dict(zip(names, row, strict=True))
        if rel == "enterprises":
            assert values["id"] == E1, (rel, values)
        if "enterprise_id" in values and rel != "carbon_factors":
            assert values["enterprise_id"] == E1, (schema, rel, values)
        if "meter_id" in values and values["meter_id"] is not None:
            assert values["meter_id"] in own_meters, (schema, rel, values)
    return len(rows)


def test_enterprise_reads_only_its_own_rows_everywhere(secured_db: SecuredDb) -> None:
    role = roles.enterprise_role(secured_db.settings, E1)
    own = secured_db.meters_of(E1)
    seen: dict[str, int] = {}
    with secured_db.connect(role, autocommit=True) as conn:
        for schema, rel in _visible_relations(secured_db):
            try:
                seen[f"{schema}.{rel}"] = _check_rows(conn, schema, rel, own)
            except DENIED:
                seen[f"{schema}.{rel}"] = -1
    # Through the names Grafana uses (search_path: enterprise, public), own data is there.
    with secured_db.connect(role, autocommit=True) as conn:
        for rel in ("readings", "usage", "usage_hourly", "usage_daily", "emissions_daily",
                    "emissions_enterprise_daily", "emissions_enterprise_monthly",
                    "meter_events", "meters", "enterprises", "dead_letters",
                    "carbon_budgets", "enterprise_economics"):
            cur = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(rel)))
            names = [c.name for c in cur.description or []]
            rows = cur.fetchall()
            assert rows, f"{rel}: the enterprise sees none of its own rows"
            for row in rows:
                values = dict(zip(names, row, strict=True))
                assert values.get("enterprise_id", E1) == E1, (rel, values)
                assert values.get("meter_id") in (own | {None}), (rel, values)
    # Park-level budget row and the other enterprise's rows are invisible, by count.
    with secured_db.connect(role) as conn:
        (n,) = conn.execute("SELECT count(*) FROM carbon_budgets").fetchone()  # type: ignore[misc]
        assert n == 1
        (n,) = conn.execute(  # type: ignore[misc]
            "SELECT count(DISTINCT meter_id) FROM readings").fetchone()
        assert n == len(own)
    assert seen["public.security_roles"] == -1
    # operational tables without enterprise columns are not granted at all
    for rel in ("accounting_runs", "ingest_sessions", "ingest_incidents", "schema_migrations"):
        assert seen.get(f"public.{rel}", -1) == -1, rel
    assert seen["public.park"] == 1
    assert seen["public.emissions_daily"] > 0


def test_joins_views_and_rollups_show_no_other_enterprise(secured_db: SecuredDb) -> None:
    role = roles.enterprise_role(secured_db.settings, E1)
    with secured_db.connect(role) as conn:
        rows = conn.execute(
            "SELECT DISTINCT m.enterprise_id FROM usage_hourly h "
            "JOIN meters m ON m.id = h.meter_id").fetchall()
        assert rows == [(E1,)]
        # a join from the registry side cannot reach other meters' usage either
        (n,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM usage_daily d WHERE d.meter_id LIKE 'E02%'").fetchone()
        assert n == 0
        (n,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM emissions_enterprise_monthly WHERE enterprise_id <> 'E01'"
        ).fetchone()
        assert n == 0
        # a park total over the views adds only the caller's rows
        (mine,) = conn.execute(  # type: ignore[misc]
            "SELECT sum(co2_location_t) FROM emissions_daily_provenance").fetchone()
    with psycopg.connect(secured_db.dsn) as conn:
        (expected,) = conn.execute(  # type: ignore[misc]
            "SELECT sum(co2_location_t) FROM emissions_daily WHERE enterprise_id = 'E01'"
        ).fetchone()
    assert mine == expected


def test_set_role_and_the_enterprise_setting_change_nothing(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    me, other = roles.enterprise_role(s, E1), roles.enterprise_role(s, E2)
    with secured_db.connect(me, autocommit=True) as conn:
        for target in (other, roles.reader_role(s), roles.service_role(s), "postgres"):
            with pytest.raises(DENIED):
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(target)))
        with pytest.raises(DENIED):
            conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(other)))
        # the group role it belongs to may be assumed, and then sees nothing at all
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.enterprise_group(s))))
        (n,) = conn.execute("SELECT count(*) FROM emissions_daily").fetchone()  # type: ignore[misc]
        assert n == 0
        conn.execute("RESET ROLE")
        # a GUC is no identity here: setting one changes nothing
        for guc in ("parkcarbon.enterprise_id", "app.enterprise", "parkcarbon.role"):
            conn.execute("SELECT set_config(%s, %s, false)", (guc, E2))
        with pytest.raises(DENIED):
            conn.execute("UPDATE security_roles SET enterprise_id = 'E02'")
        with pytest.raises(DENIED):
            conn.execute("INSERT INTO security_roles VALUES (current_user, 'park', NULL)")
        (ids,) = conn.execute(  # type: ignore[misc]
            "SELECT array_agg(DISTINCT enterprise_id) FROM emissions_daily").fetchone()
        assert ids == [E1]
        # row_security=off does not switch policies off: the query is refused instead
        conn.execute("SET row_security = off")
        with pytest.raises(DENIED):
            conn.execute("SELECT count(*) FROM emissions_daily")


def test_copy_pg_stats_and_functions_leak_nothing(secured_db: SecuredDb) -> None:
    role = roles.enterprise_role(secured_db.settings, E1)
    own = secured_db.meters_of(E1)
    others = secured_db.meters_of(E2)
    with secured_db.connect(role, autocommit=True) as conn:
        with conn.cursor() as cur, cur.copy(
                "COPY (SELECT meter_id FROM readings) TO STDOUT") as copy:
            copied = {bytes(row).decode().strip() for row in copy}
        assert copied and copied <= own
        # COPY of the table itself: filtered by the policies (plain), or refused where the
        # enterprise reads a filtered stand-in (TimescaleDB hypertables)
        try:
            with conn.cursor() as cur, cur.copy(
                    "COPY public.emissions_daily (meter_id) TO STDOUT") as copy:
                copied = {bytes(row).decode().strip() for row in copy}
            assert copied and copied <= own
        except DENIED:
            pass
        stats = conn.execute(
            "SELECT tablename, attname, most_common_vals::text, histogram_bounds::text "
            "FROM pg_stats WHERE schemaname = 'public'").fetchall()
        text = repr(stats)
        assert not any(m in text for m in others), "pg_stats shows another enterprise"
        assert "'E02'" not in text and "E02," not in text
        with pytest.raises(DENIED):
            conn.execute("CREATE FUNCTION public.leak(text) RETURNS boolean LANGUAGE sql "
                         "AS 'SELECT true'")
        with pytest.raises(DENIED):
            conn.execute("CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE sql "
                         "AS 'SELECT true'")
        with pytest.raises(DENIED):
            conn.execute("CREATE TEMP TABLE grab AS SELECT 1")
        # The policy helpers answer for the caller only through current_user
        (mine,) = conn.execute(  # type: ignore[misc]
            "SELECT public.security_enterprises(current_user)").fetchone()
        assert mine == [E1]
        # EXPLAIN ANALYZE counts only visible rows
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM emissions_daily"
                            ).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(secured_db.dsn) as conn:
        (expected,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM emissions_daily WHERE enterprise_id = 'E01'").fetchone()
    assert plan[0]["Plan"]["Actual Rows"] == expected > 0


def test_enterprise_and_reader_cannot_write(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    writes = [
        "INSERT INTO readings (meter_id, ts, value) VALUES ('E01-ELEC-1', now(), 1)",
        "UPDATE emissions_daily SET co2_location_t = 0",
        "DELETE FROM readings",
        "DELETE FROM enterprise_economics",
        "UPDATE meters SET enterprise_id = 'E01'",
        "TRUNCATE carbon_budgets",
        "INSERT INTO meter_ownership VALUES ('E02-ELEC-1', 'E01', '1900-01-01 00:00:00+00', NULL)",
        "CREATE TABLE public.mine (x int)",
        "ALTER TABLE public.emissions_daily DISABLE ROW LEVEL SECURITY",
        "DROP POLICY security_enterprise ON public.emissions_daily",
        "CREATE SCHEMA mine",
    ]
    for role in (roles.enterprise_role(s, E1), roles.reader_role(s)):
        with secured_db.connect(role, autocommit=True) as conn:
            for statement in writes:
                with pytest.raises((*DENIED, psycopg.errors.ReadOnlySqlTransaction)):
                    conn.execute(statement)
    with secured_db.connect(roles.reader_role(s)) as conn:
        (ids,) = conn.execute(  # type: ignore[misc]
            "SELECT array_agg(DISTINCT enterprise_id ORDER BY enterprise_id) "
            "FROM emissions_daily").fetchone()
        assert ids == [E1, E2]  # the park officers read every enterprise


def test_ingest_writes_readings_but_cannot_read_emissions(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    with secured_db.connect(roles.ingest_role(s), autocommit=True) as conn:
        for rel in ("emissions_daily", "enterprise_economics", "green_power",
                    "carbon_budgets", "restatements"):
            with pytest.raises(DENIED):
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(rel)))
        # the hot path: COPY into readings (row-level security is on)
        with conn.cursor() as cur, cur.copy(
                "COPY readings (meter_id, ts, value) FROM STDIN") as copy:
            copy.write_row(("E02-ELEC-1", "2026-01-01T00:00:00Z", 1.0))
        conn.execute("INSERT INTO dead_letters (topic, payload, reason_code, reason) "
                     "VALUES ('t', 'x', 'bad', 'bad')")
        (n,) = conn.execute("SELECT count(*) FROM meters").fetchone()  # type: ignore[misc]
        assert n == 52
    with psycopg.connect(secured_db.dsn) as conn:
        assert conn.execute("SELECT 1 FROM readings WHERE meter_id = 'E02-ELEC-1' "
                            "AND ts = '2026-01-01T00:00:00Z'").fetchone()


def test_service_runs_derivation_and_accounting_rollups(secured_db: SecuredDb) -> None:
    """The service role (``parkcarbon run``'s scheduler) derives usage from the readings
    and refreshes the continuous aggregates, which only their owner may do."""
    from pydantic import SecretStr

    from parkcarbon.ingest.usage.derive import derive_committed
    from parkcarbon.schema import refresh_rollups

    role = roles.service_role(secured_db.settings)
    password = roles.read_secret(roles.password_file(secured_db.settings, role))
    service = secured_db.settings.model_copy(
        update={"database_user": role, "database_password": SecretStr(password)})
    result = derive_committed(service, full=True)
    assert result.changed_from is not None
    assert refresh_rollups(service) == (secured_db.storage_mode == "timescale")
    with secured_db.connect(role) as conn:
        (n,) = conn.execute("SELECT count(*) FROM usage_derive_state").fetchone()  # type: ignore[misc]
        assert n > 0
        (user,) = conn.execute("SELECT current_user").fetchone()  # type: ignore[misc]
        assert user == role


def test_timescale_chunks_are_not_reachable(secured_db: SecuredDb) -> None:
    if secured_db.storage_mode != "timescale":
        pytest.skip("TimescaleDB mode only (chunks)")
    with psycopg.connect(secured_db.dsn) as conn:
        chunks = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', chunk_schema, chunk_name) "
            "FROM timescaledb_information.chunks").fetchall()]
    assert chunks
    role = roles.enterprise_role(secured_db.settings, E1)
    with secured_db.connect(role, autocommit=True) as conn:
        for chunk in chunks:
            with pytest.raises(DENIED):
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.SQL(chunk)))
        with pytest.raises(DENIED):
            conn.execute("SELECT * FROM public.readings")
