"""Panel SQL expanded exactly as Grafana expands it before PostgreSQL sees it.

Three steps, in Grafana's order:

1. ``interpolate_variables``: the frontend's template-variable interpolation
   (``$var``, ``${var}``, ``${var:csv}``, ``[[var]]``) with the PostgreSQL datasource's
   quoting: a single value has its ``'`` doubled but is not quoted, a multi-value or
   include-all variable's values are quoted literals joined with ``,``; a custom
   all-value is put in as is.
2. ``interpolate_globals``: ``sqleng.Interpolate`` (``$__interval``, ``$__interval_ms``,
   ``$__unixEpochFrom()``, ``$__unixEpochTo()``), plain string replacement.
3. ``expand_macros``: the PostgreSQL macro engine (``macros.go``): SQL comments are
   stripped (quote-aware), then every ``$__name(args)`` is replaced; ``$__timeFilter``
   is BETWEEN (inclusive), ``$__timeGroup`` is ``floor(extract(epoch ...))`` or, with
   ``timescaledb``, ``time_bucket('N.NNNs', c)``; an unknown macro is an error.

``expand`` runs all three. The conformance cases from Grafana's own tests are in
``tests/grafana/test_macros.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from parkcarbon.grafana.errors import MacroError

__all__ = [
    "TimeRange",
    "Variable",
    "expand",
    "expand_macros",
    "format_interval",
    "interpolate_globals",
    "interpolate_variables",
    "parse_interval",
    "strip_sql_comments",
]

# macros.go: rsIdentifier / sExpr
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# public/app/features/templating/template_srv.ts: variableRegex
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
# gtime.ParseInterval / ParseDuration units, in seconds (M and y as Grafana's fixed sizes
# are calendar-dependent there; panels here never use them).
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)$")


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range as Grafana's backend gets it (aware datetimes)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("a time range needs timezone-aware datetimes")


VarValue = str | int | float | Sequence[str | int | float]


@dataclass(frozen=True)
class Variable:
    """A template variable's current value, as the frontend interpolates it."""

    value: VarValue
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None  # a custom all-value, used as is when "All" is selected


def parse_interval(text: str) -> float:
    """Seconds of a Grafana interval such as ``5m``, ``'1d'``, ``20ms``."""
    m = _DURATION.match(text.strip().strip("'"))
    if not m:
        raise MacroError(f"error parsing interval {text}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_interval(seconds: float) -> str:
    """gtime.FormatInterval: the largest whole unit (``10m``, ``4s``, ``200ms``)."""
    ns = round(seconds * 1e9)
    for unit, size in (("y", 31536000), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if ns >= size * 10**9:
            return f"{ns // (size * 10**9)}{unit}"
    if ns >= 10**6:
        return f"{ns // 10**6}ms"
    return "1ms"


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64 (strconv 'g', shortest): ``300``, ``0.02``, ``1e+06``."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    d = Decimal(repr(abs(value))).normalize()
    _, digits_t, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(x) for x in digits_t)
    exp10 = len(digits) + exponent - 1
    # strconv.FormatFloat(v, 'g', -1, 64): with the shortest precision the exponent
    # form is used when the decimal exponent is < -4 or >= 6 (eprec forced to 6)
    if exp10 < -4 or exp10 >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    if exponent >= 0:
        return sign + digits + "0" * exponent
    point = len(digits) + exponent
    if point > 0:
        return sign + digits[:point] + "." + digits[point:]
    return sign + "0." + "0" * (-point) + digits


def _rfc3339nano(t: datetime) -> str:
    """Go's time.RFC3339Nano of ``t`` in UTC: trailing zeros of the fraction trimmed."""
    u = t.astimezone(UTC)
    text = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        text += ("." + f"{u.microsecond:06d}").rstrip("0")
    return text + "Z"


def _unix(t: datetime) -> int:
    """Go's Time.Unix(): seconds since the epoch, rounded down."""
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(seconds=1)


def _unix_nano(t: datetime) -> int:
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta // timedelta(microseconds=1)) * 1000


def strip_sql_comments(sql: str) -> str:
    """macros.go stripSQLComments: drop ``--`` and ``/* */`` comments outside quoted
    strings, quoted identifiers and dollar-quoted strings (kept verbatim)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "$":
            j = i + 1
            if j < n and sql[j] == "$":
                i = _dollar_quoted(sql, i, "$$", out)
            elif j < n and _tag_char(sql[j]) and not sql[j].isdigit():
                k = j + 1
                while k < n and _tag_char(sql[k]):
                    k += 1
                if k < n and sql[k] == "$":
                    i = _dollar_quoted(sql, i, sql[i : k + 1], out)
                else:
                    out.append(c)
                    i += 1
            else:
                out.append(c)
                i += 1
        elif c in "'\"":
            i = _quoted(sql, i, c, out)
        elif c == "/" and i + 1 < n and sql[i + 1] == "*":
            i += 2
            while i + 1 < n:
                if sql[i] == "*" and sql[i + 1] == "/":
                    i += 2
                    break
                i += 1
        elif c == "-" and i + 1 < n and sql[i + 1] == "-":
            while i < n and sql[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tag_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _quoted(sql: str, i: int, q: str, out: list[str]) -> int:
    n = len(sql)
    out.append(q)
    i += 1
    while i < n:
        if sql[i] == q:
            out.append(q)
            i += 1
            if i < n and sql[i] == q:
                out.append(q)
                i += 1
            else:
                break
        else:
            out.append(sql[i])
            i += 1
    return i


def _dollar_quoted(sql: str, i: int, closing: str, out: list[str]) -> int:
    n = len(sql)
    out.append(closing)
    i += len(closing)
    while i < n:
        if sql.startswith(closing, i):
            out.append(closing)
            return i + len(closing)
        out.append(sql[i])
        i += 1
    return i


def interpolate_globals(sql: str, time_range: TimeRange, interval_seconds: float) -> str:
    """sqleng.Interpolate: ``$__interval_ms``, ``$__interval``, ``$__unixEpochFrom()``,
    ``$__unixEpochTo()`` (in that order, plain string replacement)."""
    sql = sql.replace("$__interval_ms", str(round(interval_seconds * 1000)))
    sql = sql.replace("$__interval", format_interval(interval_seconds))
    sql = sql.replace("$__unixEpochFrom()", str(_unix(time_range.start)))
    return sql.replace("$__unixEpochTo()", str(_unix(time_range.end)))


def expand_macros(sql: str, time_range: TimeRange, *, timescaledb: bool = False) -> str:
    """The PostgreSQL macro engine: comments stripped, then every macro replaced.
    Raises ``MacroError`` with Grafana's message for an unknown or malformed macro."""
    sql = strip_sql_comments(sql)
    error: MacroError | None = None

    def replace(m: re.Match[str]) -> str:
        nonlocal error
        name = m.group(1)
        if name == "__timeGroup":
            # pre-5.3 compatibility: a ',' right after the first occurrence adds AS "time"
            index = sql.find(m.group(0))
            if index >= 0:
                index += len(m.group(0))
                if len(sql) > index and sql[index] == ",":
                    name = "__timeGroupAlias"
        args = [a.strip(" ") for a in m.group(2).split(",")]
        try:
            return _evaluate(name, args, time_range, timescaledb)
        except MacroError as exc:
            if error is None:
                error = exc
            return "macro_error()"

    out = _MACRO.sub(replace, sql)
    if error is not None:
        raise error
    return out


def _evaluate(name: str, args: list[str], tr: TimeRange, timescaledb: bool) -> str:
    # Go's strings.Split("", ",") is [""], so len(args) >= 1 always, as here.
    frm, to = tr.start, tr.end
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{_rfc3339nano(frm)}' AND '{_rfc3339nano(to)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339nano(frm)}'"
    if name == "__timeTo":
        return f"'{_rfc3339nano(to)}'"
    if name in ("__timeGroup", "__unixEpochGroup"):
        if len(args) < 2:
            raise MacroError(
                f"macro {name} needs time column and interval and optional fill value"
            )
        seconds = parse_interval(args[1])
        if len(args) == 3:
            _check_fill(args[2])
        if name == "__unixEpochGroup":
            return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"
    if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
        return _evaluate(name.removesuffix("Alias"), args, tr, timescaledb) + ' AS "time"'
    if name == "__unixEpochFilter":
        return f"{args[0]} >= {_unix(frm)} AND {args[0]} <= {_unix(to)}"
    if name == "__unixEpochNanoFilter":
        return f"{args[0]} >= {_unix_nano(frm)} AND {args[0]} <= {_unix_nano(to)}"
    if name == "__unixEpochNanoFrom":
        return str(_unix_nano(frm))
    if name == "__unixEpochNanoTo":
        return str(_unix_nano(to))
    raise MacroError(f'unknown macro "{name}"')


def _check_fill(value: str) -> None:
    """sqleng.SetupFillmode accepts NULL, previous or a number."""
    if value in ("NULL", "previous"):
        return
    try:
        float(value)
    except ValueError as exc:
        raise MacroError(f"error parsing fill value {value}") from exc


def _quote_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _format(value: VarValue, variable: Variable, fmt: str | None) -> str:
    if fmt == "csv":
        items = value if isinstance(value, list | tuple) else [value]
        return ",".join(str(v) for v in items)
    if fmt == "raw":
        return ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    if fmt == "singlequote":
        items = value if isinstance(value, list | tuple) else [value]
        return ",".join("'" + str(v).replace("'", "\\'") + "'" for v in items)
    if fmt == "doublequote":
        items = value if isinstance(value, list | tuple) else [value]
        return ",".join('"' + str(v).replace('"', '\\"') + '"' for v in items)
    if fmt is not None:
        raise MacroError(f"template variable format {fmt!r} is not supported here")
    # the PostgreSQL datasource's interpolateVariable
    if isinstance(value, str):
        if variable.multi or variable.include_all:
            return _quote_literal(value)
        return value.replace("'", "''")
    if isinstance(value, int | float):
        return str(value)
    return ",".join(_quote_literal(v) for v in value)


def interpolate_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    """The frontend's template-variable interpolation; unknown names are left as they are
    (so ``$__timeFilter(...)`` reaches the backend)."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        variable = variables.get(name)
        if variable is None:
            return m.group(0)
        value = variable.value
        all_value = variable.all_value
        if variable.include_all and all_value is not None and value in (
            "$__all", ["$__all"], all_value, [all_value]
        ):
            return all_value  # a custom all-value goes in unformatted
        return _format(value, variable, fmt)

    return _VARIABLE.sub(replace, sql)


def expand(
    sql: str,
    time_range: TimeRange,
    *,
    timescaledb: bool = False,
    variables: Mapping[str, Variable] | None = None,
    interval_seconds: float = 900.0,
) -> str:
    """Template variables, then global substitutions, then macros: what PostgreSQL runs."""
    sql = interpolate_variables(sql, variables or {})
    sql = interpolate_globals(sql, time_range, interval_seconds)
    return expand_macros(sql, time_range, timescaledb=timescaledb)
