"""The CLI toolkit every command group uses: one grammar for the whole ``parkcarbon`` tree.

- ``AppContext`` / ``pass_app``: settings for a command (``--config``, environment,
  root options), loaded once.
- ``format_option``: ``--format table|csv|json`` on every command that prints data
  (``--json`` stays as a hidden alias of ``--format json``).
- ``period_option``: ``--period YYYY | YYYY-MM | YYYY-MM-DD`` in the park's local
  calendar, parsed into a ``parkcarbon.periods.Period``.
- ``emit_rows`` / ``emit_mapping``: print records or one summary in the chosen format;
  ``render_table`` lays out a fixed-width text table; ``echo_json`` prints JSON.

Feature packages import this module, never ``parkcarbon.cli`` (the composition root).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from parkcarbon.periods import Period, parse_period
from parkcarbon.settings import Settings, load_settings

FORMATS = ("table", "csv", "json")
F = TypeVar("F", bound=Callable[..., Any])
# (key, header, decimals): one column of a text table
Column = tuple[str, str, int]


@dataclass
class AppContext:
    """What every command gets through ``pass_app``."""

    config_file: Path | None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    def settings(self, **more: Any) -> Settings:
        if more:
            return load_settings(self.config_file, **self.overrides, **more)
        if self._settings is None:
            self._settings = load_settings(self.config_file, **self.overrides)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


def format_option(func: F) -> F:
    """Add ``--format table|csv|json`` (parameter ``fmt``); ``--json`` is an alias."""

    @functools.wraps(func)
    def wrapper(*args: Any, fmt: str, as_json: bool = False, **kwargs: Any) -> Any:
        return func(*args, fmt="json" if as_json else fmt, **kwargs)

    wrapper = click.option(
        "--json", "as_json", is_flag=True, hidden=True, help="Same as --format json."
    )(wrapper)
    wrapper = click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format.",
    )(wrapper)
    return wrapper  # type: ignore[return-value]


def _period_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else parse_period(value)


def period_option(*, required: bool = False, help: str | None = None) -> Callable[[F], F]:
    """``--period`` parsed into a ``Period`` (parameter ``period``; None when omitted)."""
    return click.option(
        "--period",
        callback=_period_callback,
        required=required,
        metavar="YYYY[-MM[-DD]]",
        help=help or "Year, month or day in the park's local calendar, e.g. 2026-01.",
    )


def period_label(period: Period | None) -> str | None:
    return None if period is None else period.label


# --- output ------------------------------------------------------------------------


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def json_value(v: Any) -> Any:
    """A value as JSON wants it: NaN as null, floats rounded to 6 places, dates ISO."""
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    return v.isoformat() if isinstance(v, date) else v


def format_cell(value: Any, decimals: int) -> str:
    """A value for a text table: thousands separators, ``-`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int | float):
        return f"{value:,.{decimals}f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def render_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    total: Mapping[str, Any] | None = None,
) -> str:
    """Fixed-width text table; ``columns`` = [(key, header, decimals)], first column
    left-aligned, the others right-aligned; ``total`` is a last row under a rule."""
    cells = [[format_cell(r.get(c), d) for c, _, d in columns] for r in rows]
    if total is not None:
        cells.append([format_cell(total.get(c, ""), d) for c, _, d in columns])
    headers = [h for _, h, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if i else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    for n, r in enumerate(cells):
        if total is not None and n == len(cells) - 1:
            out.append("  ".join("-" * w for w in widths))
        out.append(line(r))
    return "\n".join(out)


def csv_text(rows: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for r in rows:
        writer.writerow(["" if r.get(k) is None else json_value(r.get(k)) for k in keys])
    return buf.getvalue()


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
    json_extra: Mapping[str, Any] | None = None,
) -> None:
    """Print records as a table (``columns``), CSV (every key of the first row, or the
    columns' keys when empty) or JSON (``{"rows": [...], **json_extra}``, or the bare
    list when there is no extra)."""
    if fmt == "json":
        records = [{k: json_value(v) for k, v in r.items()} for r in rows]
        echo_json({**json_extra, "rows": records} if json_extra else records)
        return
    if fmt == "csv":
        keys = list(rows[0].keys()) if rows else [c for c, _, _ in columns]
        click.echo(csv_text(rows, keys), nl=False)
        return
    if title:
        click.echo(title)
    click.echo(render_table(rows, columns) if rows else empty)


def emit_mapping(data: Mapping[str, Any], fmt: str, text: Callable[[], Iterable[str]]) -> None:
    """Print one summary: JSON as is, CSV as ``key,value`` lines (nested values as JSON),
    a table through ``text()`` (lines to print)."""
    if fmt == "json":
        echo_json(data)
        return
    if fmt == "csv":
        flat = [
            {"key": k, "value": json.dumps(v, ensure_ascii=False, default=_json_default)
             if isinstance(v, dict | list) else v}
            for k, v in data.items()
        ]
        click.echo(csv_text(flat, ["key", "value"]), nl=False)
        return
    for line in text():
        click.echo(line)
