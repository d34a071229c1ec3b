"""Cells as text for the PDF: thousands separators, fixed decimals, '-' for none."""

from __future__ import annotations

import math
from typing import Any

from parkcarbon.reports.models import Cell, Column


def _number(value: Any, decimals: int) -> str:
    return f"{float(value):,.{decimals}f}"


def cell_text(value: Any, column: Column) -> str:
    kind, decimals = column.kind, column.decimals
    if isinstance(value, Cell):
        kind, decimals, value = value.kind, value.decimals, value.value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "int":
        return str(int(value))
    if kind == "pct":
        return f"{float(value):,.{decimals}f}%"
    return _number(value, decimals)


def is_right(column: Column) -> bool:
    return column.kind != "text"
