"""``parkcarbon economics load``: value added, tax, investment and green power inputs."""

from __future__ import annotations

import click

from parkcarbon.carbon.cli.render import open_current
from parkcarbon.clikit import AppContext, emit_mapping, format_option, pass_app


@click.group("economics")
def economics_group() -> None:
    """Value added, tax, investment and green power inputs per enterprise and month."""


@economics_group.command("load")
@click.option(
    "--file", "path", type=click.Path(dir_okay=False), help="Default: setting economics_file."
)
@format_option
@pass_app
def load_command(app: AppContext, path: str | None, fmt: str) -> None:
    """Validate and store the economics file (upsert per enterprise and month)."""
    from parkcarbon.carbon.accounting import enterprise_ids
    from parkcarbon.carbon.certificates import check_claims, load_register, sync_register
    from parkcarbon.carbon.economics import load_economics, sync_economics_counts

    settings = app.settings()
    with open_current(app, bring_up_to_date=False) as conn:
        ids = enterprise_ids(conn)
        econ = load_economics(path or settings.economics_file, ids)
        register = (
            load_register(settings.certificates_file, ids)
            if settings.certificates_file.is_file()
            else None
        )
        check_claims(econ, register)
        sync_register(conn, register)
        stored, restated = sync_economics_counts(conn, econ)
    summary = {"source": econ.source, "enterprise_months": stored, "restated": restated}
    emit_mapping(
        summary,
        fmt,
        lambda: [
            f"{econ.source}: {stored} enterprise-months stored, {restated} market-based "
            "figures restated by green power changes"
        ],
    )
