"""Tuning constants of parkcarbon.alerts, each with the reason for its value."""

from __future__ import annotations

# Usage is stored in 15-minute slots; windows of threshold and baseline rules are whole
# slots, and the last slot is only complete once it has ended.
SLOT_SECONDS = 900

# Severity levels, most urgent first, with the Chinese labels the messages use.
SEVERITIES: dict[str, str] = {
    "critical": "紧急",
    "major": "重要",
    "minor": "次要",
    "info": "提示",
}
STATE_ZH: dict[str, str] = {
    "normal": "正常",
    "pending": "待定",
    "firing": "告警中",
    "recovering": "恢复中",
    "nodata": "无数据",
    "error": "评估错误",
}
# States in which an instance is a problem someone should know about.
ACTIVE_STATES = frozenset({"firing", "recovering", "nodata", "error"})

# Alertmanager's defaults (docs/configuration.md): wait for more alerts of a new group,
# then at most one message per group and interval, repeats every four hours.
GROUP_WAIT_SECONDS = 30.0
GROUP_INTERVAL_SECONDS = 300.0
REPEAT_INTERVAL_SECONDS = 4 * 3600.0

# Outbox: a failed send is retried after 30 s, doubling up to 30 min, for about a day
# (12 attempts reach the 30 min cap after 7; the rest cover a provider outage of hours).
BACKOFF_INITIAL_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 1800.0
MAX_ATTEMPTS = 40
# Rows claimed per delivery pass and channel (one robot message can carry them all).
CLAIM_BATCH = 50
# HTTP and SMTP timeouts: a slow provider must not hold the delivery pass for long.
SEND_TIMEOUT_SECONDS = 10.0

# WeCom, DingTalk and Feishu robots accept about 20 messages a minute each; we keep
# below that and merge what is due into one digest instead of dropping.
ROBOT_MESSAGES_PER_MINUTE = 18
# WeCom markdown content is limited to 4096 bytes, text to 2048; DingTalk and Feishu
# accept more, we cut at the same size so a digest always fits.
ROBOT_MAX_BYTES = 4000

# Acknowledge links are valid for a day unless the alerts file says otherwise.
ACK_LINK_TTL_SECONDS = 24 * 3600.0
ACK_PATH = "/alerts/ack"
