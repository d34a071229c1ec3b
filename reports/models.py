"""The report as data: sections of paragraphs, tables and charts (one model for PDF,
XLSX and CSV), and the result of writing one.

A ``Table`` holds raw values (floats stay floats; percentages are percent numbers, e.g.
12.5 for 12.5 %); each writer formats them: the PDF as text at the column's decimals,
XLSX as numbers with a number format, CSV at full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["text", "num", "pct", "int", "date"]


@dataclass(frozen=True)
class Column:
    header: str  # with its unit, e.g. "范围一 (tCO2)"
    kind: Kind = "num"
    decimals: int = 2
    width: float = 1.0  # PDF: share of the free width (text columns; numbers are auto)


@dataclass(frozen=True)
class Cell:
    """A value whose kind differs from its column's (a summary table's mixed rows)."""

    value: Any
    kind: Kind = "num"
    decimals: int = 2


@dataclass(frozen=True)
class Table:
    name: str  # a short key (CSV), unique in the report
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: tuple[Any, ...] | None = None  # a last row, set apart
    in_pdf: bool = True  # False: XLSX and CSV only (e.g. the day-by-day table)


@dataclass(frozen=True)
class Chart:
    """``bars`` (daily values and a reference line), ``pathway`` (cumulative lines and a
    cap) or ``hbars`` (labelled horizontal bars)."""

    kind: Literal["bars", "pathway", "hbars"]
    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    reference: tuple[float, ...] = ()
    cap: float | None = None
    legend: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    key: str  # cover, summary, ... (sheet and CSV key)
    title: str
    sheet: str  # XLSX sheet name (localized, <= 31 characters)
    blocks: tuple[Table | Chart | str, ...] = ()


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    lang: str
    sections: tuple[Section, ...]
    keywords: tuple[str, ...] = ()  # PDF keywords: the receipt (verify reads it)
    properties: dict[str, str] = field(default_factory=dict)  # XLSX custom properties


@dataclass(frozen=True)
class WrittenReport:
    """One report version and the files written for it."""

    report_id: int
    period: str
    enterprise_id: str | None
    version: int
    new_version: bool  # False: the figures equal the latest recorded version
    files: tuple[Path, ...]
    figures_sha256: str
    seconds: float

    @property
    def subject(self) -> str:
        return self.enterprise_id or "PARK"
