"""``report verify FILE``: do the same data and factors still give the same figures?

The file is found in ``report_files`` by its SHA-256 (a recorded, unaltered file), or
else its receipt is read from the file itself (PDF keywords, XLSX custom properties,
CSV receipt rows). The month is then read again from the database as it stands (after
bringing the chain up to date) and the figures and their inputs are hashed the same way.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg

from parkcarbon.periods import parse_period
from parkcarbon.reports import queries as Q
from parkcarbon.reports.errors import ReportError
from parkcarbon.reports.figures import load_month, subject_figures
from parkcarbon.settings import Settings


@dataclass(frozen=True)
class Verification:
    file: str
    recorded: bool  # the file's SHA-256 is a file parkcarbon wrote and recorded
    period: str
    subject: str
    version: int
    figures_sha256_file: str
    figures_sha256_now: str
    inputs_sha256_file: str
    inputs_sha256_now: str
    latest_version: int | None

    @property
    def figures_same(self) -> bool:
        return self.figures_sha256_file == self.figures_sha256_now

    @property
    def inputs_same(self) -> bool:
        return self.inputs_sha256_file == self.inputs_sha256_now

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "figures_same": self.figures_same,
                "inputs_same": self.inputs_same}


def read_receipt(path: Path, data: bytes) -> dict[str, str]:
    """period, subject, version, figures_sha256, inputs_sha256 written in the file."""
    suffix = path.suffix.lower()
    found: dict[str, str] = {}
    try:
        if suffix == ".pdf":
            from pypdf import PdfReader

            meta = PdfReader(io.BytesIO(data)).metadata
            keywords = "" if meta is None else str(meta.get("/Keywords", ""))
            for item in keywords.split(","):
                key, sep, value = item.strip().partition("=")
                if sep:
                    found[key] = value
        elif suffix == ".xlsx":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                root = ElementTree.fromstring(z.read("docProps/custom.xml"))
            for prop in root:
                name = prop.get("name", "")
                if name.startswith("parkcarbon_") and len(prop):
                    found[name.removeprefix("parkcarbon_")] = prop[0].text or ""
        elif suffix == ".csv":
            rows = csv.reader(io.StringIO(data.decode("utf-8-sig")))
            for row in rows:
                if len(row) == 6 and row[0] == "receipt" and row[1] == "properties":
                    found[row[3].removeprefix("parkcarbon_")] = row[5]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise ReportError(f"{path}: not a readable parkcarbon report ({exc})") from exc
    missing = [k for k in ("period", "subject", "version", "figures_sha256", "inputs_sha256")
               if k not in found]
    if missing:
        raise ReportError(
            f"{path}: no parkcarbon report receipt in the file (missing {', '.join(missing)})",
            hint="verify reads PDF, XLSX and CSV files written by `parkcarbon report`",
        )
    return found


def verify_file(conn: psycopg.Connection, settings: Settings, path: Path) -> Verification:
    """Compare the file's figures and inputs hashes with the database's today."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read the file ({exc.strerror})") from exc
    sha = hashlib.sha256(data).hexdigest()
    row = conn.execute(Q.FILE_BY_SHA256, (sha,)).fetchone()
    if row is not None:
        period, subject = f"{row[1]:%Y-%m}", row[2]
        version, fig_sha, inp_sha = int(row[3]), str(row[4]), str(row[5])
    else:
        r = read_receipt(path, data)
        period, version = r["period"], int(r["version"])
        subject = None if r["subject"] == "PARK" else r["subject"]
        fig_sha, inp_sha = r["figures_sha256"], r["inputs_sha256"]
    p = parse_period(period)
    month = load_month(conn, settings, p)
    fig = subject_figures(month, subject)
    latest = conn.execute(Q.LATEST_REPORT, (p.start, subject)).fetchone()
    return Verification(
        file=str(path),
        recorded=row is not None,
        period=period,
        subject=subject or "PARK",
        version=version,
        figures_sha256_file=fig_sha,
        figures_sha256_now=fig["receipt"]["figures_sha256"],
        inputs_sha256_file=inp_sha,
        inputs_sha256_now=fig["receipt"]["inputs_sha256"],
        latest_version=int(latest[1]) if latest else None,
    )
