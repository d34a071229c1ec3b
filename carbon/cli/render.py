"""What the carbon commands share: opening a current connection and printing frames.

Built on ``parkcarbon.clikit``: tables through ``clikit.render_table`` (a DataFrame is
turned into records first), JSON through ``clikit.echo_json``/``json_value``. CSV is
``DataFrame.to_csv`` (every column, full precision), as the commands always printed it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import pandas as pd
import psycopg

from parkcarbon.clikit import AppContext, Column, echo_json, json_value, render_table

F = TypeVar("F", bound=Callable[..., Any])

# What a read prints when the period has no figures after bringing the chain up to date,
# and with --no-refresh (stored figures only).
NO_FIGURES = (
    "no figures for this period: no usage has been derived from meter readings for it "
    "(is data arriving? see `parkcarbon usage gaps`)"
)
NO_STORED_FIGURES = (
    "no stored figures for this period (--no-refresh prints what is stored; run without "
    "it to derive new readings and refresh the figures first)"
)


def no_refresh_option(func: F) -> F:
    """``--no-refresh`` (parameter ``no_refresh``)."""
    return click.option(
        "--no-refresh",
        is_flag=True,
        help="Print the stored figures as they are (no usage derivation, no refresh).",
    )(func)


def open_current(app: AppContext, *, bring_up_to_date: bool) -> psycopg.Connection:
    """A connection, after bringing readings, usage, economics and figures up to date
    (``parkcarbon.carbon.current``) if asked."""
    from parkcarbon.db import connect

    settings = app.settings()
    conn = connect(settings)
    if bring_up_to_date:
        from parkcarbon.carbon.current import bring_up_to_date as update

        try:
            update(conn, settings)
        except BaseException:
            conn.close()
            raise
    return conn


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts of plain Python values."""
    return [{str(k): v for k, v in rec.items()} for rec in df.to_dict(orient="records")]


def csv_frame(df: pd.DataFrame, total: dict[str, Any] | None = None) -> str:
    """Every column, floats rounded to 6 decimals as in JSON (no float noise such as
    ``44459013.19999999``), the ``total`` (park) row last."""
    out = df
    if total is not None and not df.empty:
        out = pd.concat([df, pd.DataFrame([total]).reindex(columns=df.columns)], ignore_index=True)
    floats = out.select_dtypes(include="float").columns
    out = out.assign(**{c: out[c].round(6) for c in floats})
    return str(out.to_csv(index=False))


def emit_frame(
    df: pd.DataFrame,
    fmt: str,
    columns: Sequence[Column],
    *,
    title: str,
    total: dict[str, Any] | None = None,
    empty: str = "nothing to show",
) -> None:
    """Print a frame: a titled table (``columns``, ``total`` under a rule, then the
    footnotes in ``df.attrs['notes']``), CSV (every column, ``total`` as the last row),
    or JSON
    (``{**attrs, "rows", "total", "notes"}``)."""
    notes = list(df.attrs.get("notes", []))
    if fmt == "json":
        echo_json(
            {
                **{k: v for k, v in df.attrs.items() if k != "notes"},
                "rows": [{k: json_value(v) for k, v in r.items()} for r in records(df)],
                "total": None if total is None else {k: json_value(v) for k, v in total.items()},
                "notes": notes,
            }
        )
        return
    if fmt == "csv":
        click.echo(csv_frame(df, total), nl=False)
        return
    click.echo(title)
    if df.empty:
        click.echo(empty)
        return
    click.echo(render_table(records(df), columns, total))
    for i, note in enumerate(notes, 1):
        click.echo(f"[{i}] {note}")
