"""Errors of parkcarbon.ingest.

::

    ParkcarbonError (parkcarbon.errors)
     └── IngestError                the ingest service cannot run
          ├── BrokerError           the MQTT broker cannot be used (exit code 5)
          │    └── BrokerAuthError  the broker refused the credentials: no retry
          ├── MetricsError          the metrics endpoint cannot listen on its port
          └── DeadLetterError       a dead letter asked for by id does not exist

Bad *messages* are not errors: they become dead letters (``parkcarbon.ingest.parse``
returns them as data) and the service keeps running.
"""

from __future__ import annotations

from parkcarbon.errors import ParkcarbonError


class IngestError(ParkcarbonError):
    """Base of the ingest package's errors."""


class BrokerError(IngestError):
    """The MQTT broker is unreachable or refuses the connection."""

    exit_code = 5


class BrokerAuthError(BrokerError):
    """Bad user name, password or authorisation: retrying cannot help."""


class MetricsError(IngestError):
    """The metrics endpoint cannot be started."""


class DeadLetterError(IngestError):
    """A dead letter cannot be found or replayed."""
