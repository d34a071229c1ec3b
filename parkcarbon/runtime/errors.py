"""Errors of parkcarbon.runtime.

::

    ParkcarbonError (parkcarbon.errors)
     └── ServiceError              ``parkcarbon run`` cannot start (bad parts, a job
                                   provider that fails, health port in use, ...)
"""

from __future__ import annotations

from parkcarbon.errors import ParkcarbonError


class ServiceError(ParkcarbonError):
    """The service cannot start (bad parts, health port in use, ...)."""
