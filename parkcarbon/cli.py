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

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import psycopg

from parkcarbon import __version__, logs
from parkcarbon.carbon.cli import COMMANDS as CARBON_COMMANDS
from parkcarbon.clikit import AppContext, emit_mapping, format_option, pass_app
from parkcarbon.demo.cli import demo_command
from parkcarbon.errors import DatabaseError, ParkcarbonError
from parkcarbon.ingest.cli import deadletters_group, ingest_command
from parkcarbon.ingest.simulator.cli import simulate_command
from parkcarbon.ingest.usage.cli import usage_group
from parkcarbon.runtime.cli import run_command
from parkcarbon.settings import Settings, settings_markdown


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
    from parkcarbon.registry import load_registry

    registry = load_registry(app.settings().registry_file)
    summary = {"ok": True, **registry.summary()}

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
@pass_app
def db_migrate(app: AppContext, mode: str | None, no_sync: bool) -> None:
    """Apply pending migrations (safe to repeat and to run concurrently), then load the
    registry into the enterprises and meters tables."""
    from parkcarbon.db import connect
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    settings = app.settings(storage_mode=mode) if mode else app.settings()
    registry = None if no_sync else load_registry(settings.registry_file)
    result = migrate(settings, mode=settings.storage_mode, timezone=settings.timezone)
    if result.applied:
        click.echo(f"applied {len(result.applied)} migration(s): {', '.join(result.applied)}")
    else:
        click.echo("schema already up to date")
    click.echo(f"schema version {result.version}, storage mode {result.mode}")
    if registry is not None:
        with connect(settings) as conn:
            synced = sync_registry(conn, registry)
        click.echo(
            f"registry {registry.source}: {synced.enterprises} enterprises, "
            f"{synced.meters} meters synced"
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
