"""The macro expander against Grafana's own test vectors: grafana-macros.yaml next to this
file (a copy of the project's reference table, taken from Grafana's macros_test.go,
sql_engine_test.go and interpolationTruthTable.test.ts)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from parkcarbon.grafana.errors import MacroError
from parkcarbon.grafana.macros import (
    TimeRange,
    Variable,
    expand,
    expand_macros,
    format_interval,
    go_float,
    interpolate_globals,
    interpolate_variables,
    parse_interval,
    strip_sql_comments,
)

CASES_FILE = Path(__file__).with_name("grafana-macros.yaml")


def _cases() -> dict[str, Any]:
    path = CASES_FILE
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


CASES = _cases()
DEFAULT = ("2018-04-12T18:00:00Z", "2018-04-12T18:05:00Z")


def _range(case: dict[str, Any]) -> TimeRange:
    frm = case.get("from", DEFAULT[0])
    to = case.get("to", DEFAULT[1])
    return TimeRange(datetime.fromisoformat(frm), datetime.fromisoformat(to))


def test_the_vectors_are_all_there() -> None:
    assert len(CASES["macros"]) == 28
    assert len(CASES["global_substitutions"]) == 5
    assert len(CASES["sql_comments"]) == 3
    assert len(CASES["template_variables"]) == 9


@pytest.mark.parametrize("case", CASES["macros"], ids=lambda c: c["in"][:60])
def test_macro_engine(case: dict[str, Any]) -> None:
    assert expand_macros(case["in"], _range(case), timescaledb=case["engine"]) == case["out"]


@pytest.mark.parametrize("case", CASES["global_substitutions"], ids=lambda c: c["out"][:40])
def test_global_substitutions(case: dict[str, Any]) -> None:
    text = case.get("in", "$__interval $__timeGroupAlias(time,$__interval) $__interval_ms")
    seconds = parse_interval(case.get("interval", "10m"))
    assert interpolate_globals(text, _range(case), seconds) == case["out"]


@pytest.mark.parametrize("case", CASES["sql_comments"], ids=lambda c: c["in"][:40])
def test_sql_comments(case: dict[str, Any]) -> None:
    # the first vector is sqleng.Interpolate alone (comments kept); the others the macro
    # engine, which strips comments before expanding (the full pipeline gives the same)
    tr = _range(case)
    if "/*app=" in case["in"]:
        assert interpolate_globals(case["in"], tr, 600) == case["out"]
    else:
        assert expand(case["in"], tr, interval_seconds=600) == case["out"]


@pytest.mark.parametrize("case", CASES["template_variables"], ids=lambda c: c["sql"])
def test_template_variables(case: dict[str, Any]) -> None:
    value = case["value"]
    name = case["sql"].split("$", 1)[1].lstrip("{").split("}")[0].split(":")[0]
    name = name.split(")")[0].split("'")[0].split(" ")[0]
    var = Variable(
        value=value,
        multi=case.get("multi", False),
        include_all=case.get("includeAll", False),
        all_value=case.get("allValue"),
    )
    assert interpolate_variables(case["sql"], {name: var}) == case["out"]


def test_strip_sql_comments_keeps_quoted_text() -> None:
    assert strip_sql_comments("SELECT 1 -- a comment") == "SELECT 1 "
    assert strip_sql_comments("SELECT /* a comment */ 1") == "SELECT  1"
    assert strip_sql_comments("SELECT '-- in quotes' AS x") == "SELECT '-- in quotes' AS x"
    assert strip_sql_comments("SELECT $$ /* kept */ $$") == "SELECT $$ /* kept */ $$"
    assert strip_sql_comments('SELECT "a--b" FROM t') == 'SELECT "a--b" FROM t'
    assert strip_sql_comments("SELECT 'it''s -- ok'") == "SELECT 'it''s -- ok'"
    assert strip_sql_comments("SELECT $tag$ -- x $tag$") == "SELECT $tag$ -- x $tag$"


def test_unknown_and_malformed_macros_fail_as_grafana_does() -> None:
    tr = _range({})
    with pytest.raises(MacroError, match='unknown macro "__nope"'):
        expand_macros("SELECT $__nope(x)", tr)
    with pytest.raises(MacroError, match="needs time column and interval"):
        expand_macros("SELECT $__timeGroup(ts)", tr)
    with pytest.raises(MacroError, match="error parsing interval"):
        expand_macros("SELECT $__timeGroup(ts, 'often')", tr)
    # a macro inside a comment is never evaluated
    assert expand_macros("SELECT 1 -- $__nope(x)", tr) == "SELECT 1 "


def test_go_number_formats() -> None:
    assert [go_float(x) for x in (300.0, 0.02, 86400.0, 604800.0, 1036800.0, 1e6)] == [
        "300", "0.02", "86400", "604800", "1.0368e+06", "1e+06"]
    assert [format_interval(s) for s in (600, 4, 0.2, 86400 * 3, 3600)] == [
        "10m", "4s", "200ms", "3d", "1h"]
    tr = _range({})
    assert expand_macros("$__timeGroup(ts,'12d')", tr) == (
        "floor(extract(epoch from ts)/1.0368e+06)*1.0368e+06")


def test_time_range_must_be_aware() -> None:
    with pytest.raises(MacroError):
        TimeRange(datetime(2026, 1, 1), datetime(2026, 1, 2))  # noqa: DTZ001 (the point)
