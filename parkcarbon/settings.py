"""Settings: one validated, documented table.

Every setting has a default and a description. Values come, highest priority first,
from keyword overrides (the CLI), environment variables prefixed ``PARKCARBON_``
(``PARKCARBON_DATABASE_URL``, ``PARKCARBON_MQTT_HOST``...), an optional YAML settings
file (``--config`` or ``PARKCARBON_CONFIG_FILE``), then the defaults below.

Secrets (``database_url``, ``database_password``, ``mqtt_password``) are ``SecretStr``:
they print as ``**********`` and ``parkcarbon.db.redact_dsn`` strips passwords from DSNs
in messages. ``database_password_file`` / ``mqtt_password_file`` read a secret from a
file (Docker secrets); the ``database_*`` parts override the URL's (docs/security.md).
The README's configuration reference is generated from this table
(``parkcarbon config settings --markdown``) and a test checks they agree.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from parkcarbon.errors import ConfigError

ENV_PREFIX = "PARKCARBON_"
CONFIG_FILE_ENV = "PARKCARBON_CONFIG_FILE"

# The parsed settings file of the ``load_settings`` call in progress (None: no file).
# Secrets that can also come from a file (``<name>_file``, Docker secrets).
SECRET_FILE_SETTINGS = ("database_password", "mqtt_password")

_config_file: ContextVar[dict[str, Any] | None] = ContextVar("parkcarbon_config_file",
                                                             default=None)


class Settings(BaseSettings):
    """All parkcarbon settings. Field descriptions are the user documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # --- database -------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr("postgresql://127.0.0.1:5432/parkcarbon"),
        description="PostgreSQL connection URL (libpq form). The database is created "
        "on `db migrate` if the server allows it. The `database_*` parts below, when "
        "set, override the URL's (so a password needs no URL quoting).",
    )
    database_host: str | None = Field(None, description="PostgreSQL host (overrides the URL's).")
    database_port: int | None = Field(
        None, ge=1, le=65535, description="PostgreSQL port (overrides the URL's)."
    )
    database_user: str | None = Field(
        None, description="PostgreSQL user name (overrides the URL's), e.g. a role "
        "`db migrate` created such as `parkcarbon_service`."
    )
    database_name: str | None = Field(
        None, description="PostgreSQL database name (overrides the URL's)."
    )
    database_password: SecretStr | None = Field(
        None, description="PostgreSQL password (secret; overrides the URL's). Any "
        "character works, `@` and `/` included."
    )
    database_password_file: Path | None = Field(
        None, description="File holding the PostgreSQL password (Docker secrets; one "
        "trailing newline is ignored), instead of `database_password`."
    )
    storage_mode: Literal["auto", "timescale", "plain"] = Field(
        "auto",
        description="`timescale` needs the timescaledb extension; `plain` uses ordinary "
        "tables and views; `auto` picks timescale when the extension can be created.",
    )
    db_role_prefix: str = Field(
        "parkcarbon",
        pattern=r"^[a-z][a-z0-9_]{0,29}$",
        description="Prefix of the cluster-wide database roles `db migrate` keeps up to "
        "date (`<prefix>_ingest`, `_service`, `_reader`, `_e_<enterprise>`); give each "
        "database on a shared server its own prefix.",
    )
    secrets_dir: Path = Field(
        Path("secrets"),
        description="Directory (mode 0700) of generated secrets: one `<role>.password` "
        "file (mode 0600) per database login role, created once when missing.",
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
    mqtt_password_file: Path | None = Field(
        None, description="File holding the MQTT password (Docker secrets; one trailing "
        "newline is ignored), instead of `mqtt_password`."
    )
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
        description="Natural gas heating value (GB/T 2589): gas-field gas 35.544 MJ/m³ "
        "or oil-field gas 38.931 MJ/m³; both the CO2 factor and the tce coefficient "
        "(1.2143 / 1.3300 kgce/m³) come from it (an enterprise or meter NCV wins).",
    )
    production_file: Path = Field(
        Path("config/production.yaml"),
        description="Per enterprise and month: clinker or lime output and its measured "
        "CaO/MgO content (Scope 1 process emissions); read with the economics file.",
    )
    certificates_file: Path = Field(
        Path("config/certificates.yaml"),
        description="Green certificate register (serials, MWh, generation months, "
        "cancellation date, enterprise, bundled contract): certificate claims of the "
        "economics file are refused unless cancelled certificates cover them.",
    )
    targets_min_coverage_pct: float = Field(
        50.0,
        ge=0,
        le=100,
        description="Targets status: below this share of the year's elapsed days with "
        "data, a subject's status is `insufficient_data` instead of on_track/at_risk.",
    )
    alerts_file: Path = Field(
        Path("config/alerts.yaml"),
        description="Alert rules, channels, recipients, routes, inhibitions and the "
        "acknowledge-link secret (`parkcarbon alerts check`).",
    )
    report_dir: Path = Field(
        Path("reports-out"),
        description="Folder the monthly carbon reports are written to (one sub-folder "
        "per month; `parkcarbon report --out` overrides it).",
    )
    report_font_dir: Path = Field(
        Path("/usr/share/fonts/opentype/noto"),
        description="Folder with the CJK font of the PDF reports (Noto Sans CJK SC, "
        "Debian package `fonts-noto-cjk`).",
    )
    report_lang: Literal["zh", "en"] = Field(
        "zh", description="Language of the monthly reports (`parkcarbon report --lang`)."
    )
    report_email: bool = Field(
        True,
        description="E-mail the reports the scheduled job writes through the e-mail "
        "channels of `alerts_file` (park channels: the park officers; an enterprise's "
        "channels: its own contacts); `parkcarbon report --send` does it on demand.",
    )
    report_park_emails: str = Field(
        "",
        description="Comma-separated addresses of the park officers who get the park "
        "report (default: the `to` of the park's e-mail channels in `alerts_file`).",
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
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the metrics and health endpoint listens on (it has no "
        "authentication): `0.0.0.0` for every interface, e.g. in a container scraped "
        "by Prometheus.",
    )
    dead_letter_keep_bytes: int = Field(
        16_384,
        ge=256,
        description="A dead letter keeps at most this many bytes of its payload (the "
        "size received is recorded); a longer one cannot be replayed.",
    )
    dead_letter_retention_days: float = Field(
        90.0,
        gt=0,
        description="Dead letters replayed, or received, longer ago than this are purged "
        "(scheduled job `purge_dead_letters`, or `parkcarbon deadletters purge`).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    # --- Grafana --------------------------------------------------------------
    grafana_url: str = Field(
        "http://127.0.0.1:3000",
        description="Grafana base URL for `grafana publish` (basic auth may be given as "
        "`http://user:password@host:3000`).",
    )
    grafana_token: SecretStr | None = Field(
        None, description="Grafana service account token for `grafana publish` (secret)."
    )
    grafana_db_host: str = Field(
        "timescaledb:5432",
        description="PostgreSQL host:port as Grafana reaches it (generated datasources).",
    )
    grafana_db_name: str = Field(
        "parkcarbon", description="Database name in the generated Grafana datasources."
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """``*_password_file`` settings: read the secret from the file."""
        if not isinstance(data, dict):
            return data
        for name in SECRET_FILE_SETTINGS:
            path = data.get(f"{name}_file")
            if path in (None, ""):
                continue
            where = f"{name}_file (env {ENV_PREFIX}{name.upper()}_FILE)"
            if data.get(name) not in (None, ""):
                raise ValueError(f"{where}: set either {name} or {name}_file, not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ValueError(f"{where}: cannot read {path}: {reason}") from None
            data = {**data, name: text[:-1] if text.endswith("\n") else text}
        return data

    @field_validator("database_url")
    @classmethod
    def _connection_string(cls, value: SecretStr) -> SecretStr:
        from psycopg import ProgrammingError, conninfo

        try:
            conninfo.conninfo_to_dict(value.get_secret_value())
        except ProgrammingError:
            # psycopg's message quotes the string, password included: not shown
            raise ValueError(
                "not a PostgreSQL connection URL (postgresql://user@host:5432/dbname) "
                "or key=value string; a password with special characters goes in "
                "database_password"
            ) from None
        return value

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
        data = _config_file.get()
        if data is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=data))
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
    token = _config_file.set(None if path is None else _read_settings_file(path))
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = f"{path}" if path else "settings"
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            env = f" (env {ENV_PREFIX}{field.upper()})" if field else ""
            problems.append(f"{where}: {field}{env}: {err['msg']}" if field else
                            f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
        raise ConfigError(problems) from exc
    finally:
        _config_file.reset(token)


def _read_settings_file(path: Path) -> dict[str, Any]:
    """The settings file as a mapping (strict YAML: UTF-8, no duplicate keys)."""
    from parkcarbon.yamlfile import read_yaml

    data = read_yaml(path, what="settings file", hint="fix it or drop --config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: settings file must be a mapping of setting: value, "
                          f"not {type(data).__name__}", hint="e.g. `mqtt_host: broker.local`")
    return {str(k): v for k, v in data.items()}


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
