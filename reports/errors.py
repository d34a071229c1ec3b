"""Errors of parkcarbon.reports.

::

    ParkcarbonError
     ├── ReportError              a report cannot be produced or read (exit code 1)
     │    ├── ReportFontError     no CJK font for the PDF: names the package to install (3)
     │    └── ReportMismatchError `report verify`: the file's figures differ today (1)
     └── UsageError
          └── ReportUsageError    a report option is wrong (bad --formats, --period) (2)
"""

from __future__ import annotations

from parkcarbon.errors import ParkcarbonError, UsageError


class ReportError(ParkcarbonError):
    """A report cannot be produced, recorded or verified."""


class ReportFontError(ReportError):
    """The CJK font the PDF needs is not installed (never a PDF of empty boxes)."""

    exit_code = 3


class ReportMismatchError(ReportError):
    """``report verify``: the data and factors no longer give the file's figures."""


class ReportUsageError(UsageError):
    """A report option is not understood."""
