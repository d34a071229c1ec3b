"""Errors of parkcarbon.carbon.

::

    ParkcarbonError (parkcarbon.errors)
     ├── ConfigError
     │    ├── FactorError          factor library or park override is invalid
     │    └── TargetsError         targets or economics file is invalid
     └── CarbonError               accounting cannot proceed
          └── MissingFactorError   no factor applies to a meter on a day

A ``--period`` that is not understood raises ``parkcarbon.errors.PeriodError`` (periods
are a foundation, ``parkcarbon.periods``).
"""

from __future__ import annotations

from parkcarbon.errors import ConfigError, ParkcarbonError


class FactorError(ConfigError):
    """The factor library or a park factor override is invalid (all problems listed)."""


class TargetsError(ConfigError):
    """The targets or economics file is invalid (all problems listed)."""


class CarbonError(ParkcarbonError):
    """Carbon accounting cannot proceed."""


class MissingFactorError(CarbonError):
    """No factor of a needed key applies to a meter on a day."""
