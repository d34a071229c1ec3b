"""Errors of parkcarbon.demo.

::

    ParkcarbonError (parkcarbon.errors)
     └── DemoError                 the demo cannot complete (ingest did not take
          │                        everything, ...)
          └── EmbeddedError        an embedded fallback service (PostgreSQL, broker)
                                   cannot be set up, started or stopped
"""

from __future__ import annotations

from parkcarbon.errors import ParkcarbonError


class DemoError(ParkcarbonError):
    """The demo cannot complete (ingest did not take everything, ...)."""


class EmbeddedError(DemoError):
    """An embedded fallback service cannot be set up, started or stopped."""
