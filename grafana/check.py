"""Run every panel's SQL, expanded as Grafana would, against a database.

``panel_queries(board_json)`` lists each target of each panel (rows included);
``run_checks(conn, boards, time_range, ...)`` expands each with ``macros.expand`` (the
datasource's ``timescaledb`` flag from the database's storage mode, the template
variables given) and runs it in a read-only transaction, timing it; a failing panel is a
result with its error, the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.errors import MacroError
from parkcarbon.grafana.macros import TimeRange, Variable, expand


@dataclass(frozen=True)
class PanelQuery:
    board_uid: str
    board_title: str
    panel_id: int | None
    title: str
    ref_id: str
    raw_sql: str
    format: str


@dataclass
class PanelResult:
    query: PanelQuery
    sql: str  # as PostgreSQL ran it
    ms: float
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def summary(self) -> dict[str, Any]:
        return {
            "board": self.query.board_uid,
            "panel": self.query.title,
            "ref_id": self.query.ref_id,
            "rows": len(self.rows),
            "ms": round(self.ms, 1),
            "error": self.error,
        }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        if p.get("type") == "row":
            yield from _panels(p.get("panels") or [])
        else:
            yield p


def panel_queries(board: Mapping[str, Any]) -> list[PanelQuery]:
    out = []
    for p in _panels(list(board.get("panels") or [])):
        for t in p.get("targets") or []:
            if "rawSql" not in t:
                continue
            out.append(
                PanelQuery(
                    board_uid=str(board.get("uid")),
                    board_title=str(board.get("title")),
                    panel_id=p.get("id"),
                    title=str(p.get("title", "")),
                    ref_id=str(t.get("refId", "A")),
                    raw_sql=str(t["rawSql"]),
                    format=str(t.get("format", "time_series")),
                )
            )
    return out


def run_query(
    conn: psycopg.Connection,
    q: PanelQuery,
    time_range: TimeRange,
    *,
    timescaledb: bool,
    variables: Mapping[str, Variable] | None = None,
) -> PanelResult:
    """One panel target, expanded and run read-only (rolled back afterwards)."""
    try:
        sql = expand(q.raw_sql, time_range, timescaledb=timescaledb, variables=variables)
    except MacroError as exc:
        return PanelResult(q, "", 0.0, error=str(exc))
    result = PanelResult(q, sql, 0.0)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            t0 = time.perf_counter()
            cur = conn.execute(sql.encode())
            rows = cur.fetchall()
            result.ms = (time.perf_counter() - t0) * 1000
            result.columns = [d.name for d in cur.description or []]
            result.rows = list(rows)
    except psycopg.Error as exc:
        text = str(exc).strip()
        result.error = text.splitlines()[0] if text else type(exc).__name__
    return result


def run_checks(
    conn: psycopg.Connection,
    boards: Mapping[str, Mapping[str, Any]],
    time_range: TimeRange,
    *,
    timescaledb: bool,
    variables: Mapping[str, Variable] | None = None,
) -> list[PanelResult]:
    """Every target of every board, in board and panel order."""
    return [
        run_query(conn, q, time_range, timescaledb=timescaledb, variables=variables)
        for board in boards.values()
        for q in panel_queries(board)
    ]


def first_enterprise(conn: psycopg.Connection) -> str:
    """The enterprise board's default variable value: the first active enterprise."""
    row = conn.execute(Q.FIRST_ENTERPRISE).fetchone()
    return str(row[0]) if row and row[0] else ""
