"""The ``parkcarbon`` command group: the composition root of the command tree.

This is the one module of the foundations that imports feature packages: it lists
their command groups explicitly (``COMMAND_GROUPS`` below), so a command group that
fails to import is an error at start-up, never a silently missing command. Feature
CLIs build on ``parkcarbon.clikit`` and never import this module.

User errors (any ``ParkcarbonError``) print as one line, plus a hint line where there
is one, and exit with the error's ``exit_code``: 2 usage, 3 configuration, 4 database,
5 broker, 1 other.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import click
import psycopg

from parkcarbon import __version__, logs
from parkcarbon.alerts.cli import alerts_group
from parkcarbon.carbon.cli import COMMANDS as CARBON_COMMANDS
from parkcarbon.clikit import AppContext, emit_mapping, format_option, pass_app
from parkcarbon.demo.cli import demo_command
from parkcarbon.errors import ConfigError, DatabaseError, ParkcarbonError
from parkcarbon.grafana.cli import grafana_group
from parkcarbon.ingest.cli import deadletters_group, ingest_command
from parkcarbon.ingest.simulator.cli import simulate_command
from parkcarbon.ingest.usage.cli import usage_group
from parkcarbon.reports.cli import report_group
from parkcarbon.runtime.cli import run_command
from parkcarbon.security.cli import mqtt_group
from parkcarbon.settings import CONFIG_FILE_ENV, ENV_PREFIX, Settings, settings_markdown

log = logging.getLogger("parkcarbon.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="parkcarbon")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PARKCARBON_CONFIG_FILE",
    help="YAML settings file (env PARKCARBON_CONFIG_FILE).",
)
@click.option(
    "--database-url",
    envvar="PARKCARBON_DATABASE_URL",
    show_envvar=True,
    help="PostgreSQL URL (default postgresql://127.0.0.1:5432/parkcarbon).",
)
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PARKCARBON_REGISTRY_FILE",
    help="Park registry YAML (default config/park.yaml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    envvar="PARKCARBON_LOG_LEVEL",
    help="Log level (default INFO).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_file: Path | None,
    database_url: str | None,
    registry_file: Path | None,
    log_level: str | None,
) -> None:
    """parkcarbon: carbon and energy monitoring for an industrial park.

    Settings come from PARKCARBON_* environment variables, an optional --config YAML
    file and the defaults listed by `parkcarbon config settings`.
    """
    overrides = {"database_url": database_url, "registry_file": registry_file}
    if log_level:
        overrides["log_level"] = log_level.upper()
    app = AppContext(config_file=config_file, overrides=overrides)
    ctx.obj = app
    if ctx.invoked_subcommand is not None and "--help" not in sys.argv[1:]:
        logs.configure(app.settings().log_level)
        for line in unknown_environment(os.environ, _option_envvars(cli)):
            log.warning("%s", line)


# Environment variables with the PARKCARBON_ prefix that are not settings but belong to
# the project's scripts, benchmarks and tests (they are not typos).
_TOOL_ENV_PREFIXES = ("PARKCARBON_TEST_", "PARKCARBON_BENCH_", "PARKCARBON_MYPY_")
_TOOL_ENV = frozenset({CONFIG_FILE_ENV, "PARKCARBON_VENV", "PARKCARBON_PG_BIN",
                       "PARKCARBON_TIMESCALE_DIR", "PARKCARBON_DATA_DIR",
                       "PARKCARBON_DB_PASSWORD"})


def _option_envvars(command: click.Command) -> set[str]:
    """Every ``envvar`` of an option anywhere in the command tree."""
    found: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            found.add(envvar)
        elif envvar:
            found.update(envvar)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found |= _option_envvars(sub)
    return found


def unknown_environment(environ: Mapping[str, str], known: Iterable[str] = ()) -> list[str]:
    """One warning line per ``PARKCARBON_*`` variable that nothing reads (a typo is
    otherwise silently ignored), with the closest setting's variable as a suggestion."""
    settings_env = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    known_all = settings_env | _TOOL_ENV | set(known)
    lines = []
    for name in sorted(environ):
        if (not name.startswith(ENV_PREFIX) or name in known_all
                or name.startswith(_TOOL_ENV_PREFIXES)):
            continue
        close = difflib.get_close_matches(name, sorted(settings_env), n=1, cutoff=0.75)
        guess = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"environment variable {name} is not a parkcarbon setting and is "
                     f"ignored{guess} (`parkcarbon config settings --markdown` lists them)")
    return lines


# --- config ------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Check the park registry and show settings."""


@config_group.command("check")
@format_option
@pass_app
def config_check(app: AppContext, fmt: str) -> None:
    """Validate the registry file and print a summary (enterprises, meters by carrier).

    Every problem is listed with file, entry and field; the exit code is 3 if any.
    """
    from parkcarbon.registry import load_registry, registry_warnings

    settings = app.settings()
    registry = load_registry(settings.registry_file)
    check_timezone(settings, registry)
    warnings = registry_warnings(registry)
    summary = {"ok": True, **registry.summary(), "warnings": warnings}

    def text() -> Iterator[str]:
        yield f"{summary['file']}: OK"
        yield f"park: {summary['park']} ({summary['timezone']})"
        yield f"enterprises: {summary['enterprises']}"
        for sector, n in summary["enterprises_by_sector"].items():
            yield f"  {sector:<20} {n:>4}"
        yield f"meters: {summary['meters']}"
        for carrier, n in summary["meters_by_carrier"].items():
            yield f"  {carrier:<20} {n:>4}"
        roles = ", ".join(f"{k} {v}" for k, v in summary["meters_by_role"].items())
        yield f"meter roles: {roles}"
        for line in warnings:
            yield f"warning: {line}"

    emit_mapping(summary, fmt, text)


@config_group.command("settings")
@click.option("--markdown", is_flag=True, help="Print the reference table as Markdown.")
@format_option
@pass_app
def config_settings(app: AppContext, markdown: bool, fmt: str) -> None:
    """Show effective settings (secrets masked), or the reference table."""
    if markdown:
        click.echo(settings_markdown())
        return
    from parkcarbon.db import redact_dsn

    settings = app.settings()
    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "database_url":
            value = redact_dsn(value.get_secret_value())
        elif hasattr(value, "get_secret_value"):
            value = "***"  # SecretStr prints masked; say so in every format
        shown[name] = None if value is None else (value if isinstance(value, int | float | bool)
                                                  else str(value))
    emit_mapping(shown, fmt, lambda: (f"{k} = {v}" for k, v in shown.items()))


def check_timezone(settings: Settings, registry: Any) -> None:
    """Refuse a settings timezone that differs from the registry's park timezone: day
    and month boundaries would silently shift (8 h between Asia/Shanghai and UTC)."""
    if registry.park.timezone != settings.timezone:
        raise ConfigError(
            f"settings timezone {settings.timezone} (PARKCARBON_TIMEZONE) differs from the "
            f"park timezone {registry.park.timezone} in {registry.source}; day and month "
            "boundaries would not be the park's",
            hint=f"set PARKCARBON_TIMEZONE={registry.park.timezone} or correct park.timezone")


# --- db ----------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Create and inspect the database schema."""


@db_group.command("migrate")
@click.option(
    "--mode",
    type=click.Choice(["auto", "timescale", "plain"]),
    envvar="PARKCARBON_STORAGE_MODE",
    help="Storage mode for a new database (default auto).",
)
@click.option("--no-sync", is_flag=True, help="Do not load the registry into the database.")
@click.option("--allow-deactivate", is_flag=True,
              help="Let the sync deactivate more than a tenth of the active meters.")
@click.option("--no-roles", is_flag=True,
              help="Do not create or update the database roles and their passwords.")
@pass_app
def db_migrate(app: AppContext, mode: str | None, no_sync: bool,
               allow_deactivate: bool, no_roles: bool) -> None:
    """Apply pending migrations (safe to repeat and to run concurrently), then load the
    registry into the enterprises and meters tables.

    A sync that would deactivate more than a tenth of the active meters is refused
    unless --allow-deactivate; what it deactivates is logged at WARNING."""
    from parkcarbon.db import connect
    from parkcarbon.registry import load_registry, registry_warnings
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    settings = app.settings(storage_mode=mode) if mode else app.settings()
    registry = None if no_sync else load_registry(settings.registry_file)
    if registry is not None:
        check_timezone(settings, registry)
        for line in registry_warnings(registry):
            log.warning("%s", line)
    result = migrate(settings, mode=settings.storage_mode, timezone=settings.timezone)
    if result.applied:
        click.echo(f"applied {len(result.applied)} migration(s): {', '.join(result.applied)}")
    else:
        click.echo("schema already up to date")
    click.echo(f"schema version {result.version}, storage mode {result.mode}")
    if registry is not None:
        with connect(settings) as conn:
            synced = sync_registry(conn, registry, allow_deactivate=allow_deactivate)
        click.echo(
            f"registry {registry.source}: {synced.enterprises} enterprises, "
            f"{synced.meters} meters synced"
        )
    if not no_roles:
        from parkcarbon.security import ensure_roles

        roles = ensure_roles(settings)
        click.echo(
            f"database roles: {len(roles.park_roles)} park, {len(roles.enterprise_roles)} "
            f"enterprise (prefix {settings.db_role_prefix}, passwords in "
            f"{settings.secrets_dir}/)"
        )


@db_group.command("status")
@format_option
@pass_app
def db_status(app: AppContext, fmt: str) -> None:
    """Print the schema version and the storage mode (timescale or plain)."""
    from parkcarbon.db import redact_dsn
    from parkcarbon.schema import status

    settings = app.settings()
    st = status(settings)
    database = redact_dsn(settings.database_url.get_secret_value())

    def text() -> Iterator[str]:
        yield f"database: {database}"
        yield f"schema version: {st.version} (latest {st.latest})"
        if st.pending:
            yield f"pending migrations: {', '.join(st.pending)} (run `parkcarbon db migrate`)"
        yield f"storage mode: {st.mode or 'not set up'}"
        yield f"timezone of daily rollups: {st.timezone or '-'}"
        if st.timescaledb_version:
            yield f"timescaledb: {st.timescaledb_version}"
            yield f"hypertables: {', '.join(st.hypertables) or '-'}"
            yield f"continuous aggregates: {', '.join(st.continuous_aggregates) or '-'}"
        else:
            available = "available, not created" if st.timescaledb_available else "not installed"
            yield f"timescaledb: {available}"

    emit_mapping({"database": database, **st.as_dict()}, fmt, text)


# The feature command groups, in the order ``parkcarbon --help`` lists them after
# ``config`` and ``db`` (defined above). A new package adds its group here.
COMMAND_GROUPS: list[click.Command] = [
    ingest_command,
    deadletters_group,
    usage_group,
    simulate_command,
    *CARBON_COMMANDS,
    alerts_group,
    grafana_group,
    report_group,
    mqtt_group,
    run_command,
    demo_command,
]
for _command in COMMAND_GROUPS:
    cli.add_command(_command)


def _fail(exc: ParkcarbonError) -> NoReturn:
    click.echo(f"parkcarbon: error: {exc}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
    sys.exit(exc.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, meaningful exit codes."""
    try:
        cli.main(args=argv, prog_name="parkcarbon", standalone_mode=False)
    except ParkcarbonError as exc:
        _fail(exc)
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        # A command on a database that was never migrated (or is behind the code): the
        # schema is missing, which one command fixes.
        first = str(exc).strip().splitlines()[0]
        _fail(DatabaseError(f"the database schema is missing or out of date ({first})",
                            hint="run `parkcarbon db migrate`"))
    except psycopg.errors.InsufficientPrivilege as exc:
        first = str(exc).strip().splitlines()[0]
        _fail(DatabaseError(f"the database refused an operation: {first}",
                            hint="grant the database user that privilege, or run the "
                            "command as the database's owner"))
    except psycopg.OperationalError as exc:
        # the server went away during the command (connections are made through
        # parkcarbon.db, which reports an unreachable server itself)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(DatabaseError(f"lost the database connection: {first}",
                            hint="is PostgreSQL running? run the command again"))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
