"""Typed helpers over grafana-foundation-sdk: one PostgreSQL panel in one call.

``Field`` names a result column with its display name (Chinese, then English) and its
unit, set in the panel's field config (overrides by name), so a column keeps a plain
machine name in SQL (what ``parkcarbon grafana check`` and the tests read) and shows a
readable header and unit on the board. ``BoardContext`` carries what a build fills
into the SQL: the park timezone and the tce column of the energy basis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
)

from parkcarbon.grafana.pgquery import PLUGIN_ID, Format, PgQueryBuilder
from parkcarbon.units import SLOT_SECONDS

# Grafana unit ids
T_CO2 = "suffix: tCO₂"
TCE = "suffix: tce"
PERCENT = "percent"
KW = "kwatt"
KWH = "kwatth"
COUNT = "short"
HOURS = "h"
DATE = "dateTimeAsLocalNoDateIfToday"
RATIO_CO2_10K = "suffix: tCO₂/万元"
RATIO_TCE_10K = "suffix: tce/万元"
RATIO_CO2_MU = "suffix: tCO₂/亩"
RATIO_TCE_MU = "suffix: tce/亩"
RATIO_CO2_TCE = "suffix: tCO₂/tce"


@dataclass(frozen=True)
class Field:
    """A result column: SQL name, display name, unit (None: Grafana's default)."""

    name: str
    display: str
    unit: str | None = None
    decimals: int | None = None


@dataclass(frozen=True)
class BoardContext:
    """What a build fills into panel SQL (constants, never user input)."""

    timezone: str = "Asia/Shanghai"
    tce_column: str = "tce_equivalent"  # tce_equal_value for energy_basis equal_value
    datasource_uid: str = "parkcarbon"
    min_coverage_pct: float = 50.0  # targets status: below it, `insufficient_data`

    def __post_init__(self) -> None:
        if self.tce_column not in ("tce_equivalent", "tce_equal_value"):
            raise ValueError(f"unknown tce column {self.tce_column!r}")
        if not all(c.isalnum() or c in "_/+-" for c in self.timezone):
            raise ValueError(f"unsafe timezone {self.timezone!r}")

    @property
    def datasource(self) -> DataSourceRef:
        return DataSourceRef(type_val=PLUGIN_ID, uid=self.datasource_uid)

    def sql(self, template: str) -> str:
        return (
            template.replace("{tz}", f"'{self.timezone}'")
            .replace("{tce}", self.tce_column)
            .replace("{min_coverage}", repr(float(self.min_coverage_pct)))
            .replace("{slot}", str(SLOT_SECONDS))
        )


AnyPanel = stat.Panel | table.Panel | timeseries.Panel | bargauge.Panel


def _props(f: Field) -> list[DynamicConfigValue]:
    props = [DynamicConfigValue(id_val="displayName", value=f.display)]
    if f.unit is not None:
        props.append(DynamicConfigValue(id_val="unit", value=f.unit))
    if f.decimals is not None:
        props.append(DynamicConfigValue(id_val="decimals", value=f.decimals))
    return props


def _finish(
    panel: AnyPanel,
    ctx: BoardContext,
    title: str,
    description: str,
    sql: str,
    fields: Sequence[Field],
    fmt: Format,
    width: int,
    height: int,
) -> AnyPanel:
    panel = (
        panel.title(title)
        .description(description)
        .datasource(ctx.datasource)
        .span(width)
        .height(height)
        .with_target(
            PgQueryBuilder(ctx.sql(sql)).ref_id("A").format(fmt).datasource(ctx.datasource)
        )
    )
    for f in fields:
        panel = panel.override_by_name(f.name, _props(f))
    return panel


def stat_panel(
    ctx: BoardContext,
    title: str,
    description: str,
    sql: str,
    fields: Sequence[Field],
    *,
    width: int = 12,
    height: int = 5,
) -> stat.Panel:
    panel = _finish(stat.Panel(), ctx, title, description, sql, fields, "table", width, height)
    assert isinstance(panel, stat.Panel)
    return panel


def table_panel(
    ctx: BoardContext,
    title: str,
    description: str,
    sql: str,
    fields: Sequence[Field],
    *,
    width: int = 24,
    height: int = 9,
) -> table.Panel:
    panel = _finish(table.Panel(), ctx, title, description, sql, fields, "table", width, height)
    assert isinstance(panel, table.Panel)
    return panel


def timeseries_panel(
    ctx: BoardContext,
    title: str,
    description: str,
    sql: str,
    fields: Sequence[Field],
    *,
    unit: str | None = None,
    width: int = 12,
    height: int = 9,
    threshold: float | None = None,
) -> timeseries.Panel:
    panel = _finish(
        timeseries.Panel(), ctx, title, description, sql, fields, "time_series", width, height
    )
    assert isinstance(panel, timeseries.Panel)
    if unit is not None:
        panel = panel.unit(unit)
    if threshold is not None:
        panel = panel.thresholds(
            ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=None, color="red"), Threshold(value=threshold, color="green")])
        )
    return panel


def bar_panel(
    ctx: BoardContext,
    title: str,
    description: str,
    sql: str,
    fields: Sequence[Field],
    *,
    unit: str | None = None,
    width: int = 12,
    height: int = 9,
) -> bargauge.Panel:
    panel = _finish(bargauge.Panel(), ctx, title, description, sql, fields, "table", width, height)
    assert isinstance(panel, bargauge.Panel)
    if unit is not None:
        panel = panel.unit(unit)
    return panel
