"""Row-level security on every relation that holds per-enterprise data.

:func:`apply_row_security` runs at the end of every ``db migrate`` (after the numbered
migrations, in the migration lock). It discovers, in schema ``public``:

* tables with an ``enterprise_id`` column (and ``enterprises`` itself, by ``id``):
  an enterprise role reads rows of its own enterprise; NULL is a park-level row;
* tables keyed by ``meter_id`` (without ``enterprise_id``): an enterprise role reads
  the rows of meters it owned at the row's time (``meter_ownership`` periods);
* every view: made ``security_invoker``, so the caller's policies apply through it;
* hypertables, continuous aggregates and materialized views: a filtered
  ``security_barrier`` view of the same name in schema ``enterprise``, which the
  enterprise roles find first on their search path; the original is not granted to
  them. (TimescaleDB refuses RLS on a compressed hypertable, does not copy it to the
  chunks, which copy the hypertable's grants, and continuous aggregates take neither
  RLS nor ``security_invoker``.)

Every table gets RLS enabled and FORCEd, with two permissive policies: ``security_park``
(the owner and park roles: everything) and ``security_enterprise`` (SELECT only, own
rows). Superusers and BYPASSRLS roles are not subject to policies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from parkcarbon.security import queries as Q

log = logging.getLogger(__name__)

# Time column of a meter-keyed table, first match wins: the ownership period that
# covers this time decides which enterprise reads the row.
TIME_COLUMNS = ("ts", "bucket", "day", "first_slot", "replaced_at", "received_at")


@dataclass(frozen=True)
class Relation:
    name: str
    # r table, p partitioned, v view, m materialized view, h hypertable,
    # c continuous aggregate
    kind: str
    columns: tuple[str, ...]

    @property
    def per_enterprise(self) -> bool:
        return self.name == "enterprises" or "enterprise_id" in self.columns or (
            "meter_id" in self.columns)

    @property
    def time_column(self) -> str | None:
        return next((c for c in TIME_COLUMNS if c in self.columns), None)


@dataclass
class SecuredRelations:
    tables: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)  # schema-enterprise stand-ins


def discover(conn: psycopg.Connection) -> list[Relation]:
    caggs: set[str] = set()
    hypertables: set[str] = set()
    if conn.execute(Q.HAS_TIMESCALE).fetchone():
        caggs = {r[0] for r in conn.execute(Q.CONTINUOUS_AGGREGATES).fetchall()}
        hypertables = {r[0] for r in conn.execute(Q.HYPERTABLES).fetchall()}
    return [
        Relation(name, "c" if name in caggs else "h" if name in hypertables else kind,
                 tuple(columns))
        for name, kind, columns in conn.execute(Q.RELATIONS).fetchall()
    ]


def enterprise_predicate(rel: Relation, alias: str) -> sql.Composable:
    """The condition under which an enterprise role reads a row of ``rel``."""
    mine = sql.SQL(Q.ENTERPRISES)
    col = sql.Identifier(alias)
    if rel.name == "enterprises":
        return sql.SQL("{}.id = ANY ({})").format(col, mine)
    if "enterprise_id" in rel.columns:
        own: sql.Composable = sql.SQL("{}.enterprise_id = ANY ({})").format(col, mine)
        if rel.name in Q.SHARED_WHEN_NULL:
            own = sql.SQL("({} OR {}.enterprise_id IS NULL)").format(own, col)
        return own
    time = rel.time_column
    period: sql.Composable
    if time is None:
        period = sql.SQL("o.valid_to IS NULL")
    else:
        at = sql.SQL("{}.{}").format(col, sql.Identifier(time))
        period = sql.SQL("o.valid_from <= {at} AND (o.valid_to IS NULL OR {at} < o.valid_to)"
                         ).format(at=at)
    return sql.SQL(
        "EXISTS (SELECT 1 FROM public.meter_ownership o WHERE o.meter_id = {}.meter_id "
        "AND o.enterprise_id = ANY ({}) AND {})"
    ).format(col, mine, period)


def _secure_table(conn: psycopg.Connection, rel: Relation) -> None:
    table = sql.Identifier("public", rel.name)
    for (policy,) in conn.execute(Q.OWN_POLICIES, (rel.name,)).fetchall():
        conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(policy), table))
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
    conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
    park = sql.SQL(Q.PARK_CHECK)
    conn.execute(
        sql.SQL("CREATE POLICY security_park ON {} FOR ALL USING ({}) WITH CHECK ({})")
        .format(table, park, park)
    )
    conn.execute(
        sql.SQL("CREATE POLICY security_enterprise ON {} FOR SELECT USING ({})")
        .format(table, enterprise_predicate(rel, rel.name))
    )


def _filtered_view(conn: psycopg.Connection, rel: Relation) -> None:
    view = sql.Identifier(Q.VIEW_SCHEMA, rel.name)
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    conn.execute(
        sql.SQL("CREATE VIEW {} WITH (security_barrier) AS SELECT * FROM {} v WHERE {}")
        .format(view, sql.Identifier("public", rel.name), enterprise_predicate(rel, "v"))
    )


def apply_row_security(conn: psycopg.Connection) -> SecuredRelations:
    """Enable, FORCE and (re)create the policies; idempotent. One transaction."""
    done = SecuredRelations()
    with conn.transaction():
        # FORCEd policies apply to the owner too: whoever migrates reads everything
        conn.execute(Q.MAP_CURRENT_USER_AS_PARK)
        relations = discover(conn)
        if any(r.kind in ("h", "c", "m") and r.per_enterprise for r in relations):
            # only then: plain mode needs no stand-ins (nor CREATE on the database)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(Q.VIEW_SCHEMA)))
        for rel in relations:
            if rel.name in Q.OWNER_ONLY:
                table = sql.Identifier("public", rel.name)
                conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
                continue
            if rel.kind == "v":  # every view: a park total must not add others' rows
                conn.execute(sql.SQL("ALTER VIEW {} SET (security_invoker = true)").format(
                    sql.Identifier("public", rel.name)))
                done.views.append(rel.name)
            elif not rel.per_enterprise:
                continue
            elif rel.kind in ("r", "p"):
                _secure_table(conn, rel)
                done.tables.append(rel.name)
            else:  # hypertable, continuous aggregate or materialized view
                _filtered_view(conn, rel)
                done.filtered.append(rel.name)
    log.info(
        "row-level security on %d tables, %d invoker views, %d filtered views",
        len(done.tables), len(done.views), len(done.filtered),
    )
    return done
