"""Errors of parkcarbon.grafana.

::

    ParkcarbonError (parkcarbon.errors)
     ├── UsageError
     │    └── MacroError        panel SQL Grafana's macro engine would refuse
     └── GrafanaError           boards cannot be built, written, checked or published
          └── PublishError      the Grafana HTTP API refused a call (status, body)
"""

from __future__ import annotations

from parkcarbon.errors import ParkcarbonError, UsageError


class MacroError(UsageError):
    """A macro Grafana would reject (unknown name, missing argument, bad interval)."""


class GrafanaError(ParkcarbonError):
    """Building, checking or publishing the boards cannot proceed."""


class PublishError(GrafanaError):
    """The Grafana HTTP API refused a call."""
