"""The XLSX workbook through XlsxWriter: a sheet per section, real numbers with number
formats (thousands separators, percentages as numbers with ``0.0%``), units in the
headers, frozen header rows, fixed document dates (same figures, same bytes)."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from typing import Any

from parkcarbon.reports.models import Cell, Chart, Column, Document, Table

_FORMATS = {0: "#,##0", 1: "#,##0.0", 2: "#,##0.00", 3: "#,##0.000", 4: "#,##0.0000"}


def _num_format(kind: str, decimals: int) -> str:
    if kind == "pct":
        return "0." + "0" * decimals + "%" if decimals else "0%"
    if kind == "int":
        return "0"
    return _FORMATS.get(decimals, "#,##0." + "0" * decimals)


def render_xlsx(doc: Document, generated_at: datetime) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    naive = generated_at.astimezone(UTC).replace(tzinfo=None)  # whatever the session zone
    wb.set_properties({"title": doc.title, "subject": doc.subtitle, "author": "parkcarbon",
                       "created": naive, "comments": " ".join(doc.keywords)})
    for name, value in sorted(doc.properties.items()):
        wb.set_custom_property(name, value)
    bold = wb.add_format({"bold": True})
    title = wb.add_format({"bold": True, "font_size": 13})
    header = wb.add_format({"bold": True, "bg_color": "#E8EDF5", "text_wrap": True,
                            "valign": "top", "bottom": 1})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    formats: dict[tuple[str, int, bool], Any] = {}

    def fmt(kind: str, decimals: int, is_total: bool) -> Any:
        key = (kind, decimals, is_total)
        if key not in formats:
            props: dict[str, Any] = {"num_format": _num_format(kind, decimals)}
            if is_total:
                props.update(bold=True, top=1)
            formats[key] = wb.add_format(props)
        return formats[key]

    used: set[str] = set()
    for section in doc.sections:
        name = section.sheet[:31]
        while name in used:
            name = name[:29] + "_"
        used.add(name)
        ws = wb.add_worksheet(name)
        ws.write_string(0, 0, section.title, title)
        row = 1
        frozen = False
        widths: dict[int, int] = {}
        for block in section.blocks:
            if isinstance(block, str):
                ws.write_string(row, 0, block, wrap)
                row += 1
            elif isinstance(block, Chart):
                continue  # the figures are in the tables; charts are in the PDF
            else:
                row = _table(ws, block, row, header, fmt, bold, widths, freeze=not frozen)
                frozen = True
                row += 1
        for col, width in widths.items():
            ws.set_column(col, col, min(60, max(8, width)))
    wb.close()
    return buf.getvalue()


def _table(ws: Any, t: Table, row: int, header: Any, fmt: Any, bold: Any,
           widths: dict[int, int], *, freeze: bool) -> int:
    for c, col in enumerate(t.columns):
        ws.write_string(row, c, col.header, header)
        widths[c] = max(widths.get(c, 0), min(24, len(col.header) + 2))
    if freeze:
        ws.freeze_panes(row + 1, 0)
    row += 1
    rows = list(t.rows) + ([t.total] if t.total is not None else [])
    for n, r in enumerate(rows):
        is_total = t.total is not None and n == len(rows) - 1
        for c, (value, col) in enumerate(zip(r, t.columns, strict=True)):
            _write(ws, row, c, value, col, fmt, is_total, bold)
            if isinstance(value, str):
                widths[c] = max(widths.get(c, 0), min(50, len(value) + 2))
        row += 1
    return row


def _write(ws: Any, row: int, col: int, value: Any, column: Column, fmt: Any,
           is_total: bool, bold: Any) -> None:
    kind, decimals = column.kind, column.decimals
    if isinstance(value, Cell):
        kind, decimals, value = value.kind, value.decimals, value.value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        ws.write_blank(row, col, None, fmt("num", decimals, is_total))
        return
    if isinstance(value, bool):
        ws.write_boolean(row, col, value)
        return
    if isinstance(value, int | float) and kind != "text":
        number = float(value) / 100.0 if kind == "pct" else value
        ws.write_number(row, col, number, fmt(kind, decimals, is_total))
        return
    ws.write_string(row, col, str(value), bold if is_total else None)
