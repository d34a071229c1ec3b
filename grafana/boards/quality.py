"""数据质量 Data quality: silent meters, completeness, estimation, events, dead letters."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.boards.enterprise import METER_FIELDS
from parkcarbon.grafana.panels import (
    COUNT,
    HOURS,
    PERCENT,
    BoardContext,
    Field,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "parkcarbon-quality"

COMPLETENESS_FIELDS = [
    Field("enterprise_id", "企业 enterprise"),
    Field("days", "天数 days", COUNT, 0),
    Field("days_below_90", "低于90%天数 days below 90 %", COUNT, 0),
    Field("measured_pct", "实测完整率 measured", PERCENT, 1),
    Field("estimated_pct", "估算占比 estimated share", PERCENT, 1),
]


def board(ctx: BoardContext) -> Dashboard:
    return (
        Dashboard("数据质量 Data quality")
        .uid(UID)
        .description(
            "Meters silent now, completeness per enterprise and local day against the "
            "90 % rule, estimated share, meter events, dead letters, ingest rate."
        )
        .tags(["parkcarbon", "data-quality"])
        .timezone(ctx.timezone)
        .time("now-7d", "now")
        .refresh("5m")
        .with_panel(
            stat_panel(
                ctx,
                "园区完整率 Park completeness",
                "Measured (not estimated) 15-minute slots of the expected ones, days "
                "below 90 % and the estimated share, park-wide.",
                Q.completeness_summary(park_only=True),
                COMPLETENESS_FIELDS,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "静默计量表 Meters silent now",
                "Active meters without a reading for more than three intervals as of the "
                "range end (or now).",
                Q.SILENT_METERS,
                [
                    Field("enterprise_id", "企业 enterprise"),
                    Field("meter_id", "计量表 meter"),
                    Field("carrier", "品种 carrier"),
                    Field("last_reading_at", "最新读数 last reading"),
                    Field("silent_hours", "静默时长 silent for", HOURS, 1),
                ],
                width=12,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "逐日完整率 Completeness by enterprise and day",
                "Measured slots of the expected ones per enterprise and local day; the "
                "threshold marks the 90 % rule.",
                Q.COMPLETENESS_DAILY,
                [Field("measured_pct", "完整率 completeness")],
                unit=PERCENT,
                width=24,
                threshold=90.0,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "企业完整率 Completeness by enterprise",
                "Per enterprise over the range: days below the 90 % rule, measured and "
                "estimated share.",
                Q.completeness_summary(),
                COMPLETENESS_FIELDS,
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "计量事件 Meter events by kind",
                "Events derivation noticed, per enterprise and kind, in the range.",
                Q.EVENTS_BY_KIND,
                [
                    Field("enterprise_id", "企业 enterprise"),
                    Field("kind", "类型 kind"),
                    Field("events", "事件 events", COUNT, 0),
                ],
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "死信 Dead letters by reason and enterprise",
                "Messages ingest could not accept, received in the range (open: not "
                "replayed).",
                Q.DEAD_LETTERS,
                [
                    Field("reason_code", "原因 reason"),
                    Field("enterprise_id", "企业 enterprise"),
                    Field("dead_letters", "死信 dead letters", COUNT, 0),
                    Field("open", "未重放 open", COUNT, 0),
                ],
                width=12,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "接入速率 Ingest rate",
                "15-minute slots stored per hour (hourly up to 2 days, the day's mean "
                "beyond) and dead letters per hour.",
                Q.INGEST_RATE,
                [Field("slots_per_hour", "时段/小时 slots per hour")],
                unit=COUNT,
            )
        )
        .with_panel(
            timeseries_panel(
                ctx,
                "死信速率 Dead letters per hour",
                "Dead letters received per hour.",
                Q.DEAD_LETTERS_PER_HOUR,
                [Field("dead_letters_per_hour", "死信/小时 dead letters per hour")],
                unit=COUNT,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "计量表 Meters",
                "Every active meter: last reading, completeness, estimated slots, events.",
                Q.meters(None),
                METER_FIELDS,
            )
        )
    )
