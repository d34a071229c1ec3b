"""企业详情 Enterprise detail: one enterprise's carriers, load, budget and meters."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableRefresh

from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.boards.alerts import ACTIVE_FIELDS as ALERT_FIELDS
from parkcarbon.grafana.boards.alerts import HISTORY_FIELDS
from parkcarbon.grafana.boards.park import STATUS_FIELDS
from parkcarbon.grafana.panels import (
    COUNT,
    KW,
    PERCENT,
    T_CO2,
    TCE,
    BoardContext,
    Field,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "parkcarbon-enterprise"
VAR = "$enterprise"

METER_FIELDS = [
    Field("enterprise_id", "企业 enterprise"),
    Field("meter_id", "计量表 meter"),
    Field("carrier", "品种 carrier"),
    Field("role", "用途 role"),
    Field("unit", "单位 unit"),
    Field("last_reading_at", "最新读数时间 last reading"),
    Field("last_value", "最新读数 last value", COUNT),
    Field("completeness_pct", "完整率 completeness", PERCENT, 1),
    Field("estimated_slots", "估算时段 estimated slots", COUNT, 0),
    Field("events", "事件 events", COUNT, 0),
]
EVENT_FIELDS = [
    Field("enterprise_id", "企业 enterprise"),
    Field("meter_id", "计量表 meter"),
    Field("kind", "类型 kind"),
    Field("ts_start", "开始 from"),
    Field("quantity", "用量 quantity", COUNT),
    Field("detail", "详情 detail"),
]


def board(ctx: BoardContext) -> Dashboard:
    return (
        Dashboard("企业详情 Enterprise detail")
        .uid(UID)
        .description(
            "One enterprise: its carriers, 15-minute electricity load, the month against "
            "its budget, its meters with the last reading, completeness and events."
        )
        .tags(["parkcarbon", "enterprise"])
        .timezone(ctx.timezone)
        .time("now-7d", "now")
        .refresh("15m")
        .with_variable(
            QueryVariable("enterprise")
            .label("企业 Enterprise")
            .datasource(ctx.datasource)
            .query(Q.ENTERPRISE_VARIABLE)
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        )
        .with_panel(
            stat_panel(
                ctx,
                "本期 对预算 Period vs budget",
                "The enterprise's Scope 1+2 of the range (on its budgets' basis) against "
                "its monthly budgets prorated by day.",
                Q.period_vs_budget(VAR),
                [
                    Field("period_co2_t", "本期排放 period", T_CO2, 1),
                    Field("period_budget_co2_t", "本期预算 budget", T_CO2, 1),
                    Field("period_vs_budget_pct", "排放/预算 vs budget", PERCENT, 1),
                ],
            )
        )
        .with_panel(
            stat_panel(
                ctx,
                "年累计 Year to date",
                "Its `targets status` for the year of the range end (none without a target).",
                Q.targets_status(VAR),
                STATUS_FIELDS,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "15分钟负荷 Electricity load",
                "kW of each electricity meter per 15-minute slot (ranges up to 31 days), "
                "the daily mean beyond.",
                Q.LOAD_CURVE,
                [Field("kw", "负荷 load")],
                unit=KW,
                width=24,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "分品种 Carriers",
                "Energy by carrier in its physical unit and tce, with location-based tCO2.",
                Q.energy_by_carrier(VAR),
                [
                    Field("carrier", "品种 carrier"),
                    Field("scope", "范围 scope"),
                    Field("quantity", "用量 quantity", COUNT, 0),
                    Field("unit", "单位 unit"),
                    Field("tce", "折标煤 tce", TCE, 1),
                    Field("co2_location_t", "排放 tCO2", T_CO2, 1),
                ],
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "计量表 Meters",
                "Its meters: last reading, completeness (measured slots of the expected "
                "ones), estimated slots and events in the range.",
                Q.meters(VAR),
                METER_FIELDS,
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "告警 Its alerts",
                "Its alert instances that are not normal now (firing first).",
                Q.alerts_active(VAR),
                ALERT_FIELDS,
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "告警历史 Its alert history",
                "State changes of its alerts in the range.",
                Q.alert_history(VAR),
                HISTORY_FIELDS,
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "计量事件 Meter events",
                "Gaps, resets, rollovers, replacements... of its meters in the range.",
                Q.events(VAR),
                EVENT_FIELDS,
            )
        )
    )
