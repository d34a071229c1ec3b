"""Errors of parkcarbon.alerts.

::

    ParkcarbonError (parkcarbon.errors)
     ├── ConfigError
     │    └── AlertsConfigError      config/alerts.yaml is wrong (every problem at once,
     │                               each naming file, entry and field), or a secret
     │                               reference cannot be resolved (exit code 3)
     ├── UsageError
     │    └── AlertsUsageError       a command-line value (alert id, duration, matcher)
     │                               is wrong (exit code 2)
     └── DeliveryError               a channel could not deliver one message (retried
                                     with backoff by the outbox; never raised to a user
                                     except by ``alerts test``)
"""

from __future__ import annotations

from parkcarbon.errors import ConfigError, ParkcarbonError, UsageError


class AlertsConfigError(ConfigError):
    """The alerts file (rules, channels, recipients, routes) is invalid."""


class AlertsUsageError(UsageError):
    """A value given to an ``alerts`` command is not understood."""


class DeliveryError(ParkcarbonError):
    """A channel refused or failed one message; ``detail`` is what the provider said."""

    def __init__(self, message: str, *, detail: str = "", retry: bool = True) -> None:
        super().__init__(message)
        self.detail = detail or message
        self.retry = retry
