"""Bring the chain up to date before a read: readings -> usage -> economics -> figures.

``bring_up_to_date(conn, settings)`` is what ``emissions``, ``indicators`` and
``targets status`` do first (and what a monthly report calls): derive usage from the
readings that arrived since the last derivation (``derive_committed``, committed on its
own connection), store the economics file when there is one (setting
``economics_file``), then refresh the figures (``accounting.refresh``). Each step does
nothing, writes nothing and logs nothing at INFO when there is nothing new.
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


def bring_up_to_date(conn: psycopg.Connection, settings: Any) -> UpToDate:
    """Derive new usage, sync the economics file, refresh the figures (in that order).

    ``settings``: a ``parkcarbon.settings.Settings``. The derivation commits on its own
    connection; economics and figures are written in ``conn``'s transaction (the caller
    commits, or the ``with connect(...)`` block does).
    """
    derived = derive_committed(settings)  # logs at INFO only when usage changed
    months = None
    if settings.economics_file.is_file():
        economics = load_economics(settings.economics_file, enterprise_ids(conn))
        months = sync_economics(conn, economics)
    return UpToDate(derived, months, refresh(conn, settings))

