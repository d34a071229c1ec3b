"""告警 Alerts: firing now, history, deliveries and their failures."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from parkcarbon.grafana import queries as Q
from parkcarbon.grafana.panels import COUNT, BoardContext, Field, stat_panel, table_panel

UID = "parkcarbon-alerts"

ACTIVE_FIELDS = [
    Field("rule_id", "规则 rule"),
    Field("subject", "对象 subject"),
    Field("enterprise_id", "企业 enterprise"),
    Field("meter_id", "计量表 meter"),
    Field("kind", "类型 kind"),
    Field("severity", "级别 severity"),
    Field("state", "状态 state"),
    Field("value", "当前值 value"),
    Field("threshold", "阈值 threshold"),
    Field("active_since", "开始 since"),
    Field("last_eval_at", "最近评估 last evaluated"),
    Field("ack_by", "确认人 acknowledged by"),
    Field("ack_until", "确认至 acknowledged until"),
]
HISTORY_FIELDS = [
    Field("rule_id", "规则 rule"),
    Field("subject", "对象 subject"),
    Field("enterprise_id", "企业 enterprise"),
    Field("from_state", "原状态 from"),
    Field("to_state", "新状态 to"),
    Field("value", "值 value"),
    Field("note", "说明 note"),
]


def board(ctx: BoardContext) -> Dashboard:
    return (
        Dashboard("告警 Alerts")
        .uid(UID)
        .description("Alerts firing now, their history, notification deliveries and failures.")
        .tags(["parkcarbon", "alerts"])
        .timezone(ctx.timezone)
        .time("now-7d", "now")
        .refresh("1m")
        .with_panel(
            stat_panel(
                ctx,
                "当前告警 Alerts now",
                "Alert instances per state right now.",
                Q.ALERTS_BY_STATE,
                [
                    Field("firing", "告警中 firing", COUNT, 0),
                    Field("pending", "待定 pending", COUNT, 0),
                    Field("recovering", "恢复中 recovering", COUNT, 0),
                    Field("nodata_or_error", "无数据/错误 no data or error", COUNT, 0),
                ],
                width=24,
                height=4,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "正在告警 Firing now",
                "Every alert instance that is not normal, firing first.",
                Q.alerts_active(),
                ACTIVE_FIELDS,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "告警历史 History",
                "State changes of the alert instances in the range.",
                Q.alert_history(),
                HISTORY_FIELDS,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "通知投递 Deliveries by channel",
                "Notifications queued in the range per channel (sent, failed, pending) "
                "and delivery attempts.",
                Q.DELIVERIES,
                [
                    Field("channel", "渠道 channel"),
                    Field("sent", "已发送 sent", COUNT, 0),
                    Field("failed", "失败 failed", COUNT, 0),
                    Field("pending", "待发送 pending", COUNT, 0),
                    Field("attempts", "尝试 attempts", COUNT, 0),
                    Field("failed_attempts", "失败尝试 failed attempts", COUNT, 0),
                    Field("mean_ms", "平均耗时 mean duration", "ms", 0),
                ],
                width=12,
            )
        )
        .with_panel(
            table_panel(
                ctx,
                "投递失败 Delivery failures",
                "Failed delivery attempts in the range with the channel's answer.",
                Q.DELIVERY_FAILURES,
                [
                    Field("channel", "渠道 channel"),
                    Field("enterprise_id", "企业 enterprise"),
                    Field("recipient", "接收人 recipient"),
                    Field("reason", "原因 reason"),
                    Field("detail", "详情 detail"),
                    Field("duration_ms", "耗时 duration", "ms", 0),
                    Field("attempts", "尝试次数 attempts", COUNT, 0),
                    Field("status", "状态 status"),
                ],
                width=12,
            )
        )
    )
