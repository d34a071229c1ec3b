"""The PDF through Typst (``typst`` package), with the CJK font embedded.

The document becomes ``data.json`` (cells formatted, charts as numbers) next to the
template in a scratch folder, compiled with a fixed timestamp so the same figures give
the same bytes. Typst does not bundle a CJK font and, without one, silently prints empty
boxes with only a warning: every warning fails the report, and a missing font is a
``ReportFontError`` naming the package to install.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from parkcarbon.reports.errors import ReportError, ReportFontError
from parkcarbon.reports.formatting import cell_text, is_right
from parkcarbon.reports.models import Chart, Document, Table
from parkcarbon.reports.template import TEMPLATE

FONT_FAMILY = "Noto Sans CJK SC"
TYPST_TIMESTAMP = 1_767_196_800  # 2026-01-01T00:00:00+08:00
FONT_HINT = (
    "install the Debian package fonts-noto-cjk (apt-get install fonts-noto-cjk), or set "
    "PARKCARBON_REPORT_FONT_DIR to a folder holding Noto Sans CJK SC"
)
# Sections that start on a new page (the cover title page is followed by section 1).
_LANDSCAPE = {"ranking", "indicators", "factors"}
_NEW_PAGE = {"changes", "ranking", "quality", "factors"}


def _table(t: Table) -> dict[str, Any]:
    widths = [0 if c.kind != "text" else c.width for c in t.columns]
    many = len(t.columns) > 8
    return {
        "kind": "table",
        "header": [c.header for c in t.columns],
        "rows": [[cell_text(v, c) for v, c in zip(r, t.columns, strict=True)] for r in t.rows],
        "total": None if t.total is None
        else [cell_text(v, c) for v, c in zip(t.total, t.columns, strict=True)],
        "right": [is_right(c) for c in t.columns],
        "widths": widths,
        "size": 6.5 if many else 8,
    }


def _chart(c: Chart) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "title": c.title,
        "labels": list(c.labels),
        "values": [float(v) for v in c.values],
        "texts": [f"{v:,.1f}" for v in c.values],
        "reference": [float(v) for v in c.reference],
        "cap": c.cap,
        "legend": list(c.legend) or ["", "", ""],
    }


def document_data(doc: Document) -> dict[str, Any]:
    sections = []
    for s in doc.sections:
        blocks = []
        for b in s.blocks:
            if isinstance(b, Table):
                if b.in_pdf:
                    blocks.append(_table(b))
            elif isinstance(b, Chart):
                blocks.append(_chart(b))
            else:
                blocks.append({"kind": "para", "text": b})
        sections.append({"title": s.title, "pagebreak": s.key in _NEW_PAGE,
                         "landscape": s.key in _LANDSCAPE, "blocks": blocks})
    return {
        "title": doc.title,
        "subtitle": doc.subtitle,
        "lang": doc.lang,
        "fonts": [FONT_FAMILY],
        "keywords": list(doc.keywords),
        "sections": sections,
    }


class PdfRenderer:
    """One Typst compiler (fonts loaded once) for many reports."""

    def __init__(self, font_dir: Path, *, system_fonts: bool = True) -> None:
        import typst

        self._dir = tempfile.TemporaryDirectory(prefix="parkcarbon-report-")
        self.root = Path(self._dir.name)
        (self.root / "main.typ").write_text(TEMPLATE, encoding="utf-8")
        self.font_dir = font_dir
        self._compiler = typst.Compiler(
            root=str(self.root),
            font_paths=[str(font_dir)] if font_dir.is_dir() else [],
            ignore_system_fonts=not system_fonts,
        )

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> PdfRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, doc: Document, generated_at: datetime) -> bytes:
        """The PDF bytes; the same document and time give the same bytes."""
        import typst

        data = json.dumps(document_data(doc), ensure_ascii=False, sort_keys=True)
        (self.root / "data.json").write_text(data, encoding="utf-8")
        try:
            pdf, warnings = self._compiler.compile_with_warnings(
                str(self.root / "main.typ"), format="pdf",
                # one fixed instant: the document has no date (``date: none``), and a
                # timestamp that changes per report makes Typst redo all its cached work
                timestamp=TYPST_TIMESTAMP,
                pdf_tags=False,  # untagged: about half the size (93 KB vs 171 KB)
            )
        except typst.TypstError as exc:
            raise ReportError(f"the PDF could not be typeset: {exc}") from exc
        problems = [str(w) for w in warnings]
        if any("font" in p.lower() for p in problems):
            raise ReportFontError(
                f"no CJK font for the PDF report ({FONT_FAMILY} not found in "
                f"{self.font_dir} or the system fonts): {'; '.join(problems)}",
                hint=FONT_HINT,
            )
        if problems:
            raise ReportError(f"Typst warned while typesetting the report: {'; '.join(problems)}")
        assert isinstance(pdf, bytes)
        return pdf
