"""Errors of parkcarbon.ingest.

::

    ParkcarbonError (parkcarbon.errors)
     ├── BrokerError                the MQTT broker cannot be used (exit code 5),
     │    └── BrokerAuthError       from parkcarbon.errors (the one MQTT client factory)
     └── IngestError                the ingest service cannot run
          ├── DeadLetterError       a dead letter asked for by id does not exist
          ├── DeriveError           usage cannot be derived (registry and readings disagree)
          └── SimulatorError        the simulator was asked for something impossible

Bad *messages* are not errors: they become dead letters (``parkcarbon.ingest.parse``
returns them as data) and the service keeps running.
"""

from __future__ import annotations

from parkcarbon.errors import BrokerAuthError, BrokerError, ParkcarbonError

__all__ = [
    "BrokerAuthError",
    "BrokerError",
    "DeadLetterError",
    "DeriveError",
    "IngestError",
    "SimulatorError",
]


class IngestError(ParkcarbonError):
    """Base of the ingest package's errors."""


class DeadLetterError(IngestError):
    """A dead letter cannot be found or replayed."""


class DeriveError(IngestError):
    """Usage cannot be derived."""


class SimulatorError(IngestError):
    """The simulator cannot produce what was asked."""
