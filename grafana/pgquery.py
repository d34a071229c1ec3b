"""A PostgreSQL query for grafana-foundation-sdk, which ships no SQL query builder.

The official custom-query pattern: a ``cogvariants.Dataquery`` with ``to_json`` /
``from_json``, a ``Builder`` for it, and a ``DataqueryConfig`` registered under the
core plugin id ``grafana-postgresql-datasource`` so ``Dashboard.from_json`` reads panels
back into this type (the round trip the tests check). The backend reads ``rawSql``,
``format`` and ``refId``; ``rawQuery`` / ``editorMode: code`` keep the editor in code
mode. No ``fill*`` keys: the backend fails a query that carries them.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_ID = "grafana-postgresql-datasource"
Format = Literal["table", "time_series"]


class PgQuery(cogvariants.Dataquery):
    """One panel target of the PostgreSQL datasource (code mode)."""

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        format_val: Format = "table",
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val: Format = format_val
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "rawSql": self.raw_sql,
            "format": self.format_val,
            "rawQuery": True,
            "editorMode": "code",
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            ref_id=str(data.get("refId", "A")),
            raw_sql=str(data.get("rawSql", "")),
            format_val="time_series" if data.get("format") == "time_series" else "table",
            datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class PgQueryBuilder(cogbuilder.Builder[PgQuery]):
    """``PgQueryBuilder(sql).ref_id("B").format("time_series").datasource(ref)``."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = PgQuery(raw_sql=raw_sql)

    def build(self) -> PgQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, format_val: Format) -> Self:
        self._internal.format_val = format_val
        return self

    def datasource(self, ref: DataSourceRef) -> Self:
        self._internal.datasource = ref
        return self


def register() -> None:
    """Let ``Dashboard.from_json`` read PostgreSQL targets back as ``PgQuery``."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=PLUGIN_ID, from_json_hook=PgQuery.from_json)
    )
    # the datasource's alias id (plugin.json aliasIDs)
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier="postgres", from_json_hook=PgQuery.from_json)
    )
