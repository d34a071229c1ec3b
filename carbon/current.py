"""Bring the chain up to date before a read: readings -> usage -> economics -> figures.

``bring_up_to_date(conn, settings)`` is what ``emissions``, ``indicators`` and
``targets status`` do first (and what a monthly report calls): derive usage from the
readings that arrived since the last derivation (``derive_committed``, committed on its
own connection), store the economics file when there is one (setting
``economics_file``) and the production file (``production_file``: process
emissions), refresh the figures (``accounting.refresh``), then write the
targets file's monthly budgets into ``carbon_budgets`` (``targets.sync_budgets``), so
Grafana and reports read the budgets ``targets status`` uses. Each step does nothing,
writes nothing and logs nothing at INFO when there is nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from parkcarbon.carbon.accounting import enterprise_ids, refresh
from parkcarbon.carbon.economics import load_economics, sync_economics
from parkcarbon.carbon.models import RefreshResult
from parkcarbon.ingest.usage.derive import DeriveResult, derive_committed


@dataclass(frozen=True)
class UpToDate:
    """What ``bring_up_to_date`` did."""

    derived: DeriveResult
    economics_months: int | None  # enterprise-months stored; None: no economics file
    accounting: RefreshResult
    budgets_changed: int | None = None  # carbon_budgets rows written or removed
    process_changed: int | None = None  # process_emissions rows; None: no production file


def bring_up_to_date(conn: psycopg.Connection, settings: Any) -> UpToDate:
    """Derive new usage, sync the economics file, refresh the figures (in that order).

    ``settings``: a ``parkcarbon.settings.Settings``. The derivation commits on its own
    connection; economics and figures are written in ``conn``'s transaction (the caller
    commits, or the ``with connect(...)`` block does).
    """
    from parkcarbon.carbon.targets import sync_budgets

    derived = derive_committed(settings)  # logs at INFO only when usage changed
    months = None
    if settings.economics_file.is_file():
        from parkcarbon.carbon.certificates import check_claims, load_register, sync_register

        ids = enterprise_ids(conn)
        economics = load_economics(settings.economics_file, ids)
        register = (
            load_register(settings.certificates_file, ids)
            if settings.certificates_file.is_file()
            else None
        )
        check_claims(economics, register)  # refuses certificate claims without evidence
        sync_register(conn, register)
        months = sync_economics(conn, economics)
    production = None
    if settings.production_file.is_file():
        from parkcarbon.carbon.process import load_production, sync_production

        production = sync_production(
            conn, load_production(settings.production_file, enterprise_ids(conn))
        )
    result = refresh(conn, settings)
    return UpToDate(derived, months, result, sync_budgets(conn, settings), production)

