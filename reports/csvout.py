"""The CSV: every table of the report in one long table (section, table, row, column,
value), UTF-8 with a BOM so Excel on a Chinese Windows opens it correctly. Numbers at
full precision (percentages as percent numbers), the receipt in the last rows."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from parkcarbon.reports.models import Cell, Document, Table

BOM = "\ufeff"


def _value(value: Any) -> str:
    if isinstance(value, Cell):
        value = value.value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_csv(doc: Document) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["section", "table", "row", "item", "column", "value"])
    for s in doc.sections:
        for b in s.blocks:
            if not isinstance(b, Table):
                continue
            rows = list(b.rows) + ([b.total] if b.total is not None else [])
            for n, r in enumerate(rows, 1):
                item = _value(r[0]) if b.columns[0].kind == "text" else _value(r[1])
                for v, c in zip(r, b.columns, strict=True):
                    w.writerow([s.key, b.name, n, item, c.header, _value(v)])
    for n, (key, value) in enumerate(sorted(doc.properties.items()), 1):
        w.writerow(["receipt", "properties", n, key, key, value])
    return (BOM + buf.getvalue()).encode("utf-8")
