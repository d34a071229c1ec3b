"""The alerts file as frozen models, and the values evaluation passes around.

Durations are written ``30s``, ``15m``, ``4h``, ``2d`` (or a number of seconds) and held
as float seconds. Secrets are ``{env: NAME}`` or ``{file: PATH}`` references
(``SecretRef``), never literals.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from parkcarbon.alerts.constants import (
    ACK_LINK_TTL_SECONDS,
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_MAX_SECONDS,
    GROUP_INTERVAL_SECONDS,
    GROUP_WAIT_SECONDS,
    MAX_ATTEMPTS,
    REPEAT_INTERVAL_SECONDS,
    SLOT_SECONDS,
)
from parkcarbon.alerts.errors import AlertsConfigError

ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}


def parse_duration(value: Any) -> float:
    """``90`` / ``"90s"`` / ``"15m"`` / ``"4h"`` / ``"2d"`` / ``"1w"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s, 15m, 4h or 2d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 4h or 2d")
    return float(m.group(1)) * _UNIT[m.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]
Severity = Literal["critical", "major", "minor", "info"]
NoData = Literal["nodata", "normal", "alerting", "keep"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SecretRef(_Model):
    """Where a secret lives: an environment variable or a file (first line)."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("must be a reference {env: NAME} or {file: PATH}, never a literal")
        return data

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> str:
        """The secret's value; ``AlertsConfigError`` when it is not there."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise AlertsConfigError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            text = self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AlertsConfigError(f"cannot read {self.file}: {exc}") from exc
        if not text:
            raise AlertsConfigError(f"{self.file} is empty")
        return text.splitlines()[0]


# --- channels --------------------------------------------------------------------


class _Channel(_Model):
    id: str = Field(pattern=ID)
    enterprise: str | None = Field(
        None, description="The enterprise this channel reaches (None: park staff)"
    )
    language: Literal["zh", "en"] | None = None

    def secrets(self) -> list[tuple[str, SecretRef]]:
        return [
            (name, value)
            for name, value in ((n, getattr(self, n)) for n in type(self).model_fields)
            if isinstance(value, SecretRef)
        ]


class EmailChannel(_Channel):
    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    sender: str = Field(alias="from", min_length=3)
    to: tuple[str, ...] = Field(min_length=1)
    verify_tls: bool = True


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    bearer_token: SecretRef | None = None


class WeComChannel(_Channel):
    type: Literal["wecom"]
    key: SecretRef
    url: str = Field("https://qyapi.weixin.qq.com/cgi-bin/webhook/send", pattern=r"^https?://")
    mentions: tuple[str, ...] = ()  # WeCom userids (<@userid>) or "@all"


class DingTalkChannel(_Channel):
    type: Literal["dingtalk"]
    access_token: SecretRef
    secret: SecretRef | None = None  # the 加签 secret (SEC...)
    url: str = Field("https://oapi.dingtalk.com/robot/send", pattern=r"^https?://")
    at_mobiles: tuple[str, ...] = ()


class FeishuChannel(_Channel):
    type: Literal["feishu"]
    token: SecretRef
    secret: SecretRef | None = None  # 签名校验
    url: str = Field("https://open.feishu.cn/open-apis/bot/v2/hook", pattern=r"^https?://")


class MqttChannel(_Channel):
    type: Literal["mqtt"]
    topic_prefix: str | None = None  # default: the settings' topic_prefix
    qos: Literal[0, 1, 2] = 1


Channel = Annotated[
    EmailChannel | WebhookChannel | WeComChannel | DingTalkChannel | FeishuChannel
    | MqttChannel,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("email", "webhook", "wecom", "dingtalk", "feishu", "mqtt")
ROBOT_TYPES = frozenset({"wecom", "dingtalk", "feishu"})


# --- recipients and routes -------------------------------------------------------


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 22:00 as sexagesimal 1320
        return time(value // 60 % 24, value % 60)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time of day HH:MM")
    return time(int(m.group(1)), int(m.group(2)))


Clock = Annotated[time, BeforeValidator(_clock)]


class QuietHours(_Model):
    """Local times (park timezone) when only ``bypass`` severities are sent."""

    start: Clock
    end: Clock
    bypass: tuple[Severity, ...] = ("critical",)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Recipient(_Model):
    id: str = Field(pattern=ID)
    name: str | None = None
    enterprise: str | None = None  # None: park staff, may receive every alert
    channels: tuple[str, ...] = Field(min_length=1)
    language: Literal["zh", "en"] = "zh"
    quiet_hours: QuietHours | None = None
    group_by: tuple[str, ...] = ("rule",)


class Escalation(_Model):
    after: Duration
    to: tuple[str, ...] = Field(min_length=1)


class Route(_Model):
    name: str | None = None
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    # "enterprise": the recipients of the alert's own enterprise; or recipient ids
    to: Literal["enterprise"] | tuple[str, ...]
    escalate: tuple[Escalation, ...] = ()
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None


class Matcher(_Model):
    label: str
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit


def match_map(match: dict[str, str | list[str]], labels: dict[str, str]) -> bool:
    """A route or inhibition matcher: every key equal to (one of) the value(s)."""
    for key, want in match.items():
        have = labels.get(key, "")
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class Inhibition(_Model):
    source: dict[str, str | list[str]]
    target: dict[str, str | list[str]]
    equal: tuple[str, ...] = ()


# --- rules -----------------------------------------------------------------------


class Override(_Model):
    enterprise: str | None = None
    meter: str | None = None
    enabled: bool | None = None
    threshold: float | None = None
    clear: float | None = None
    severity: Severity | None = None
    for_seconds: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _one(self) -> Override:
        if (self.enterprise is None) == (self.meter is None):
            raise ValueError("give exactly one of enterprise or meter")
        return self


class _Rule(_Model):
    id: str = Field(pattern=ID)
    description: str | None = None
    severity: Severity | None = None
    for_seconds: Duration | None = Field(None, alias="for")
    keep_firing_for: Duration | None = None
    no_data: NoData | None = None
    enabled: bool = True
    enterprises: tuple[str, ...] = ()  # empty: all
    meters: tuple[str, ...] = ()  # empty: all (meter rules)
    carriers: tuple[str, ...] = ()  # empty: all
    overrides: tuple[Override, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    op: Literal["above", "below"] = "above"
    threshold: float = 0.0
    clear: float | None = None

    # Missing data is the offline rule's business: other rules keep their state unless
    # the rule asks for the nodata state (``no_data: nodata``), so one dead meter does
    # not send one "no data" message per rule (Grafana's DatasourceNoData spam).
    default_no_data: NoData = "keep"
    subject: Literal["meter", "enterprise", "park"] = "meter"


class ThresholdRule(_Rule):
    """Power or usage over a window: ``rate`` (canonical unit per hour: kW, m³/h) or
    ``total`` (canonical unit)."""

    kind: Literal["threshold"]
    subject: Literal["meter", "enterprise"] = "meter"
    metric: Literal["rate", "total"] = "rate"
    window: Duration = 900.0
    threshold: float

    @model_validator(mode="after")
    def _slots(self) -> ThresholdRule:
        if self.window < SLOT_SECONDS or self.window % SLOT_SECONDS:
            raise ValueError("window must be a whole number of 15-minute slots")
        return self


class BaselineRule(_Rule):
    """Usage of the last window against the same weekday and hour of recent weeks;
    the value is the ratio (1.0 = as usual)."""

    kind: Literal["baseline"]
    subject: Literal["meter", "enterprise"] = "meter"
    direction: Literal["spike", "drop"] = "spike"
    ratio: float = Field(gt=0)
    clear_ratio: float | None = Field(None, gt=0)
    weeks: int = Field(4, ge=1, le=12)
    window: Duration = 3600.0
    min_baseline: float = Field(0.0, ge=0, description="Below this baseline: no data")

    @model_validator(mode="after")
    def _slots(self) -> BaselineRule:
        if self.window < SLOT_SECONDS or self.window % SLOT_SECONDS:
            raise ValueError("window must be a whole number of 15-minute slots")
        return self


class OfflineRule(_Rule):
    """No reading for ``intervals`` x the meter's ``interval_seconds``; the value is
    the silence in intervals."""

    kind: Literal["offline"]
    subject: Literal["meter"] = "meter"
    intervals: float = Field(3.0, gt=0)
    default_no_data: NoData = "alerting"  # a meter that never reported is offline


class CompletenessRule(_Rule):
    """Share of measured (not estimated, not missing) 15-minute slots in the last
    complete local day; the value is a fraction (0.9 = 90 %)."""

    kind: Literal["completeness"]
    subject: Literal["meter", "enterprise"] = "meter"
    min_share: float = Field(0.9, gt=0, le=1)


class CounterAnomalyRule(_Rule):
    """New meter events (reset, absurd jump, replacement mismatch) within ``window``;
    the value is their count."""

    kind: Literal["counter_anomaly"]
    subject: Literal["meter"] = "meter"
    events: tuple[Literal["reset", "absurd", "replacement_mismatch", "negative", "gap"],
                  ...] = ("reset", "absurd", "replacement_mismatch")
    window: Duration = 86400.0
    default_no_data: NoData = "normal"


class CarbonBudgetRule(_Rule):
    """From ``targets status`` and ``carbon_budgets``: ``mtd_vs_budget_pct`` (month to
    date against the month's budget share to date), ``forecast_vs_cap_pct`` (projected
    year end against the cap) or ``runout_days`` (days until the cap is used up)."""

    kind: Literal["carbon_budget"]
    subject: Literal["enterprise", "park"] = "enterprise"
    metric: Literal["mtd_vs_budget_pct", "forecast_vs_cap_pct", "runout_days"]
    threshold: float
    default_no_data: NoData = "normal"


class DeadLetterRule(_Rule):
    """An enterprise's rejected messages per hour (last hour) above ``threshold``."""

    kind: Literal["dead_letters"]
    subject: Literal["enterprise"] = "enterprise"
    threshold: float = 10.0
    default_no_data: NoData = "normal"


class IngestIncidentRule(_Rule):
    """Incidents ingest recorded in ``ingest_incidents`` (a broker session lost, or taken
    over by another client with ingest's client id) within ``window``; one subject per
    ingest client id (park-level), the value is its incident count."""

    kind: Literal["ingest_incident"]
    subject: Literal["park"] = "park"
    incidents: tuple[Literal["session_lost", "session_taken_over"], ...] = Field(
        ("session_lost", "session_taken_over"), min_length=1)
    window: Duration = Field(3600.0, gt=0)
    default_no_data: NoData = "normal"


Rule = Annotated[
    ThresholdRule | BaselineRule | OfflineRule | CompletenessRule | CounterAnomalyRule
    | CarbonBudgetRule | DeadLetterRule | IngestIncidentRule,
    Field(discriminator="kind"),
]
RULE_KINDS = (
    "threshold", "baseline", "offline", "completeness", "counter_anomaly", "carbon_budget",
    "dead_letters", "ingest_incident",
)


# --- the file --------------------------------------------------------------------


class Defaults(_Model):
    for_seconds: Duration = Field(300.0, alias="for")
    keep_firing_for: Duration = 0.0
    severity: Severity = "major"
    group_wait: Duration = GROUP_WAIT_SECONDS
    group_interval: Duration = GROUP_INTERVAL_SECONDS
    repeat_interval: Duration = REPEAT_INTERVAL_SECONDS


class AckConfig(_Model):
    secret: SecretRef | None = None
    base_url: str | None = Field(None, pattern=r"^https?://")
    link_ttl: Duration = ACK_LINK_TTL_SECONDS
    default_for: Duration = 4 * 3600.0


class DeliveryConfig(_Model):
    backoff_initial: Duration = BACKOFF_INITIAL_SECONDS
    backoff_max: Duration = BACKOFF_MAX_SECONDS
    max_attempts: int = Field(MAX_ATTEMPTS, ge=1)


class AlertsConfig(_Model):
    defaults: Defaults = Field(default_factory=lambda: Defaults.model_validate({}))
    ack: AckConfig = Field(default_factory=lambda: AckConfig.model_validate({}))
    delivery: DeliveryConfig = Field(default_factory=lambda: DeliveryConfig.model_validate({}))
    grafana_url: str | None = None
    channels: tuple[Channel, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    routes: tuple[Route, ...] = ()
    inhibit: tuple[Inhibition, ...] = ()
    rules: tuple[Rule, ...] = ()
    source: str = "<memory>"

    def channel(self, channel_id: str) -> _Channel:
        for c in self.channels:
            if c.id == channel_id:
                return c
        raise KeyError(channel_id)

    def recipient(self, recipient_id: str) -> Recipient:
        for r in self.recipients:
            if r.id == recipient_id:
                return r
        raise KeyError(recipient_id)

    def rule(self, rule_id: str) -> _Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


AnyRule = _Rule
AnyChannel = _Channel


# --- evaluation values -----------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One subject's value in one evaluation (None: no data)."""

    subject: str
    enterprise_id: str | None
    meter_id: str | None
    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Effective:
    """A rule's settings for one subject after the overrides."""

    enabled: bool
    threshold: float
    clear: float
    severity: str
    for_seconds: float
    keep_firing_for: float
    no_data: str
    op: str


@dataclass
class Instance:
    """The durable state of one (rule, subject)."""

    rule_id: str
    subject: str
    enterprise_id: str | None
    meter_id: str | None
    kind: str
    severity: str
    state: str = "normal"
    value: float | None = None
    threshold: float | None = None
    pending_since: datetime | None = None
    active_since: datetime | None = None
    recovering_since: datetime | None = None
    resolved_at: datetime | None = None
    episode: int = 0
    last_eval_at: datetime | None = None
    ack_by: str | None = None
    ack_until: datetime | None = None
    ack_comment: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(f"{self.rule_id}\0{self.subject}".encode()).hexdigest()[:16]

    def acked(self, now: datetime) -> bool:
        return self.ack_until is not None and self.ack_until > now


@dataclass(frozen=True)
class Transition:
    instance: Instance
    from_state: str
    to_state: str
    at: datetime
    note: str = ""
