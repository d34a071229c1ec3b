"""Settings: one validated, documented table.

Every setting has a default and a description. Values come, highest priority first,
from keyword overrides (the CLI), environment variables prefixed ``PARKCARBON_``
(``PARKCARBON_DATABASE_URL``, ``PARKCARBON_MQTT_HOST``...), an optional YAML settings
file (``--config`` or ``PARKCARBON_CONFIG_FILE``), then the defaults below.

Secrets (``database_url``, ``mqtt_password``) are ``SecretStr``: they print as
``**********`` and ``parkcarbon.db.redact_dsn`` strips passwords from DSNs in messages.
The README's configuration reference is generated from this table
(``parkcarbon config settings --markdown``) and a test checks they agree.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from parkcarbon.errors import ConfigError

ENV_PREFIX = "PARKCARBON_"
CONFIG_FILE_ENV = "PARKCARBON_CONFIG_FILE"

_config_file: ContextVar[Path | None] = ContextVar("parkcarbon_config_file", default=None)


class Settings(BaseSettings):
    """All parkcarbon settings. Field descriptions are the user documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # --- database -------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr("postgresql://127.0.0.1:5432/parkcarbon"),
        description="PostgreSQL connection URL (libpq form). The database is created "
        "on `db migrate` if the server allows it.",
    )
    storage_mode: Literal["auto", "timescale", "plain"] = Field(
        "auto",
        description="`timescale` needs the timescaledb extension; `plain` uses ordinary "
        "tables and views; `auto` picks timescale when the extension can be created.",
    )
    # --- MQTT -----------------------------------------------------------------
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host.")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="MQTT broker port.")
    mqtt_tls: bool = Field(False, description="Connect to the broker over TLS.")
    mqtt_ca_file: Path | None = Field(
        None, description="CA bundle for TLS; the system store when unset."
    )
    mqtt_username: str | None = Field(None, description="MQTT user name.")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password (secret).")
    mqtt_client_id: str = Field(
        "parkcarbon-ingest",
        min_length=1,
        description="Fixed client id, so the broker keeps the persistent session "
        "(and queued QoS 1 messages) while ingest is down.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    mqtt_shared_group: str | None = Field(
        None,
        description="MQTT 5 shared-subscription group: workers with the same group "
        "split the load (`$share/<group>/<prefix>/+/+`).",
    )
    mqtt_session_expiry_seconds: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="MQTT 5 session expiry: how long the broker keeps the session "
        "and its queued messages while ingest is disconnected.",
    )
    topic_prefix: str = Field("park", description="First level of meter topics.")
    # --- park -----------------------------------------------------------------
    timezone: str = Field(
        "Asia/Shanghai",
        description="IANA timezone of the park; day, month and year boundaries are "
        "local, storage is UTC.",
    )
    registry_file: Path = Field(
        Path("config/park.yaml"), description="Park registry: park, enterprises, meters."
    )
    targets_file: Path = Field(
        Path("config/targets.yaml"), description="Peak-carbon targets and budgets."
    )
    factors_file: Path | None = Field(
        None,
        description="Park factor overrides (YAML), applied on top of the shipped "
        "factor library.",
    )
    economics_file: Path = Field(
        Path("config/economics.yaml"),
        description="Per enterprise and month: value added, tax, investment, green power "
        "purchases and certificates (carbon indicators, market-based Scope 2).",
    )
    electricity_region: Literal["xinjiang", "northwest", "national"] = Field(
        "xinjiang",
        description="Grid region of the location-based electricity factor (MEE/NBS "
        "provincial, regional or national average).",
    )
    energy_basis: Literal["equivalent", "equal_value"] = Field(
        "equivalent",
        description="GB/T 2589 electricity conversion to standard coal: `equivalent` "
        "(当量值 0.1229 kgce/kWh) or `equal_value` (等价值).",
    )
    natural_gas_kind: Literal["gas_field", "oil_field"] = Field(
        "gas_field",
        description="GB/T 2589 natural gas coefficient: gas-field gas 1.2143 kgce/m³ or "
        "oil-field gas 1.3300 kgce/m³ (an enterprise factor override wins).",
    )
    # --- ingest ---------------------------------------------------------------
    max_payload_bytes: int = Field(
        262_144, ge=256, description="Messages larger than this are dead-lettered."
    )
    future_tolerance_seconds: float = Field(
        300.0, ge=0, description="Readings stamped further in the future are rejected."
    )
    past_horizon_days: float = Field(
        400.0, gt=0, description="Readings older than this many days are rejected."
    )
    batch_size: int = Field(
        5000, ge=1, description="Most readings in one COPY batch (one transaction)."
    )
    flush_interval_seconds: float = Field(
        0.02,
        ge=0,
        description="Group commit: a writer collects messages arriving within this time "
        "into one transaction (0: commit whatever has arrived at once).",
    )
    metrics_port: int | None = Field(
        9108,
        ge=0,
        le=65535,
        description="Port of the Prometheus metrics and health endpoint (0 or unset: off).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "+#") or value.startswith("$"):
            raise ValueError("must be non-empty, without '+', '#' or a leading '$'")
        return value.strip("/")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides, environment, an optional YAML file and defaults.

    Raises ``ConfigError`` listing every invalid setting, naming where it came from.
    """
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = os.environ[CONFIG_FILE_ENV]
    path = Path(config_file) if config_file is not None else None
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: settings file not found")
    token = _config_file.set(path)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = f"{path}" if path else "settings"
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            env = f" (env {ENV_PREFIX}{field.upper()})" if field else ""
            problems.append(f"{where}: {field}{env}: {err['msg']}")
        raise ConfigError(problems) from exc
    finally:
        _config_file.reset(token)


def settings_table() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, description) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        shown = "" if default is None else str(default)
        rows.append((name, f"{ENV_PREFIX}{name.upper()}", shown, field.description or ""))
    return rows


def settings_markdown() -> str:
    """The configuration reference as a Markdown table (embedded in the README)."""
    lines = [
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, env, default, desc in settings_table():
        shown = f"`{default}`" if default else "(unset)"
        lines.append(f"| `{name}` | `{env}` | {shown} | {desc} |")
    return "\n".join(lines)
