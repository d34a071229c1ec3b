"""园区总览 Park overview: the park against its budget and cap, by day, carrier and scope."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.panels import (
    COUNT,
    PERCENT,
    RATIO_CO2_10K,
    RATIO_CO2_MU,
    RATIO_CO2_TCE,
    RATIO_TCE_10K,
    RATIO_TCE_MU,
    T_CO2,
    TCE,
    BoardContext,
    Field,
    bar_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "parkcarbon-park"

STATUS_FIELDS = [
    Field("subject", "对象 subject"),
    Field("basis", "口径 basis"),
    Field("cap_co2_t", "年度上限 annual cap", T_CO2, 0),
    Field("cap_source", "上限来源 cap source"),
    Field("data_through", "数据截至 data through"),
    Field("days_with_data", "有数据天数 days with data", COUNT, 0),
    Field("days_elapsed", "已过天数 days elapsed", COUNT, 0),
    Field("coverage_pct", "数据覆盖 coverage", PERCENT, 1),
    Field("ytd_co2_t", "年累计 year to date", T_CO2, 1),
    Field("ytd_budget_co2_t", "年累计预算 YTD budget", T_CO2, 1),
    Field("ytd_vs_budget_pct", "累计/预算 YTD vs budget", PERCENT, 1),
    Field("burn_pct", "上限消耗 cap burnt", PERCENT, 1),
    Field("forecast_co2_t", "年末预测 year-end forecast", T_CO2, 0),
    Field("forecast_vs_cap_pct", "预测/上限 forecast vs cap", PERCENT, 1),
    Field("runout_date", "耗尽日期 runs out on"),
    Field("status", "状态 status"),
]
INDICATOR_FIELDS = [
    Field("enterprise_id", "企业 enterprise"),
    Field("name_zh", "名称 name"),
    Field("co2_t", "范围一+二 Scope 1+2", T_CO2, 1),
    Field("tce", "综合能耗 energy", TCE, 1),
    Field("co2_per_10k_cny", "碳强度 tCO2 per 10k CNY", RATIO_CO2_10K, 3),
    Field("tce_per_10k_cny", "能耗强度 tce per 10k CNY", RATIO_TCE_10K, 3),
    Field("co2_per_tce", "tCO2/tce", RATIO_CO2_TCE, 3),
    Field("co2_per_mu", "亩均碳排 tCO2 per mu", RATIO_CO2_MU, 2),
    Field("tce_per_mu", "亩均能耗 tce per mu", RATIO_TCE_MU, 2),
    Field("non_fossil_share_pct", "非化石能源占比 non-fossil share", PERCENT, 1),
    Field("green_power_share_pct", "绿电占比 green-power share", PERCENT, 1),
]


def board(ctx: BoardContext) -> Dashboard:
    return (
        Dashboard("园区总览 Park overview")
        .uid(UID)
        .description(
            "Park Scope 1+2 against its budget and cap (carbon_budgets), by local day, "
            "carrier and scope; the peak-carbon pathway; top emitters; intensities."
        )
        .tags(["parkcarbon", "carbon"])
        .timezone(ctx.timezone)
        .time("now/M", "now/M")
        .refresh("15m")
        .with_row(Row("本期与年累计 This period and year to date"))
        .with_panel(
            stat_panel(
                ctx,
                "本期 范围一+二 对预算 Period Scope 1+2 vs budget",
                "Scope 1+2 of the local days in the range (on the budgets' basis) against "
                "the monthly budgets prorated by day.",
                Q.period_vs_budget(None),
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
                "年累计 对预算与上限 Year to date vs budget and cap",
                "The park's `targets status` for the year of the range end: YTD against "
                "the budget to the last day with data, the cap, the year-end forecast.",
                Q.targets_status("PARK"),
                STATUS_FIELDS,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "逐日排放 Daily emissions",
                "Scope 1 and Scope 2 (location-based) per local day of the park.",
                Q.DAILY_EMISSIONS,
                [
                    Field("scope1_co2_t", "范围一 Scope 1"),
                    Field("scope2_co2_t", "范围二 Scope 2"),
                    Field("scope12_co2_t", "范围一+二 Scope 1+2"),
                ],
                unit=T_CO2,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "范围二 位置法与市场法 Scope 2 location vs market",
                "Scope 2 per local day: location-based, and market-based (green power "
                "contracts and certificates reduce grid electricity).",
                Q.SCOPE2_BASES,
                [
                    Field("scope2_location_co2_t", "位置法 location-based"),
                    Field("scope2_market_co2_t", "市场法 market-based"),
                ],
                unit=T_CO2,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "分品种能耗 Energy by carrier",
                "Energy in the carrier's physical unit and in tce (GB/T 2589), with the "
                "location-based tCO2 of each carrier and scope.",
                Q.energy_by_carrier(),
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
            bar_panel(
                ctx,
                "非化石与绿电占比 Non-fossil and green-power share",
                "Park: PV consumed on site plus green power, as a share of energy (tce) "
                "and of electricity consumed.",
                Q.indicators(park_only=True),
                [
                    Field("non_fossil_share_pct", "非化石能源占比 non-fossil share"),
                    Field("green_power_share_pct", "绿电占比 green-power share"),
                ],
                unit=PERCENT,
            )
        )
        .with_row(Row("达峰路径 Peak-carbon pathway"))
        .with_panel(
            timeseries_panel(
                ctx,
                "达峰路径 Cumulative against budget and cap",
                "Cumulative Scope 1+2 of the year against the cumulative budget line and "
                "the annual cap; the forecast keeps the year-to-date pace.",
                Q.PATHWAY,
                [
                    Field("cumulative_co2_t", "累计实际 cumulative actual"),
                    Field("cumulative_budget_co2_t", "累计预算 cumulative budget"),
                    Field("cap_co2_t", "年度上限 annual cap"),
                    Field("forecast_co2_t", "年末预测 forecast"),
                ],
                unit=T_CO2,
                width=24,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "目标状态 Targets status",
                "Park and enterprise targets: cap, YTD, forecast, run-out date.",
                Q.targets_status(),
                STATUS_FIELDS,
            )
        )
        .with_row(Row("企业 Enterprises"))
        .with_panel(
            table_panel(
                ctx,
                "排放大户 Top emitters",
                "Location-based Scope 1+2 per enterprise: share of the park, change "
                "against the same range one month earlier.",
                Q.TOP_EMITTERS,
                [
                    Field("enterprise_id", "企业 enterprise"),
                    Field("name_zh", "名称 name"),
                    Field("scope12_co2_t", "范围一+二 Scope 1+2", T_CO2, 1),
                    Field("share_pct", "占比 share", PERCENT, 1),
                    Field("previous_co2_t", "上月同期 a month earlier", T_CO2, 1),
                    Field("mom_change_pct", "环比 month on month", PERCENT, 1),
                ],
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "强度指标 Intensities",
                "Carbon and energy intensity per 10k CNY of value added and per mu of "
                "land, non-fossil and green-power share (location-based).",
                Q.indicators(),
                INDICATOR_FIELDS,
                width=12,
            )
        )
    )
