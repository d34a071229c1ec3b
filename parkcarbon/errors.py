"""The parkcarbon error tree.

::

    ParkcarbonError                 base of everything raised on purpose (exit code 1)
     ├── UsageError                 a command-line value is wrong (exit code 2)
     │    └── PeriodError           a period is not YYYY, YYYY-MM or YYYY-MM-DD
     ├── ConfigError                settings, registry or targets file is wrong (3);
     │                              ``problems`` lists every problem found at once
     ├── UnitError                  a unit is unknown or cannot measure a carrier (3)
     ├── DatabaseError              the database is unreachable or inconsistent (4)
     │    └── MigrationError        the schema cannot be brought up to date
     ├── BrokerError                the MQTT broker cannot be used (5)
     │    └── BrokerAuthError       the broker refused the credentials: no retry
     └── EndpointError              the HTTP health/metrics endpoint cannot listen

Each feature package draws its own tree from these in its ``errors`` module
(``parkcarbon.ingest.errors``, ``parkcarbon.carbon.errors``,
``parkcarbon.runtime.errors``, ``parkcarbon.demo.errors``). The CLI turns any
``ParkcarbonError`` into one line on stderr and a non-zero exit code (``exit_code``);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ParkcarbonError(Exception):
    """Base class. ``hint`` is an optional second sentence telling the user what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(ParkcarbonError):
    """A configuration file (settings, registry, targets, factors) is invalid.

    ``problems`` holds one line per problem, each naming file, entry and field.
    """

    exit_code = 3

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(message, hint=hint)


class UnitError(ParkcarbonError):
    """A unit string is not understood, or its dimension does not fit the carrier."""

    exit_code = 3


class DatabaseError(ParkcarbonError):
    """The database cannot be reached or is not in the expected state."""

    exit_code = 4


class MigrationError(DatabaseError):
    """Migrations cannot be applied (mode mismatch, failed statement, ...)."""


class UsageError(ParkcarbonError):
    """A value given on the command line is not understood."""

    exit_code = 2


class PeriodError(UsageError):
    """A period string is not understood."""


class BrokerError(ParkcarbonError):
    """The MQTT broker is unreachable or refuses the connection."""

    exit_code = 5


class BrokerAuthError(BrokerError):
    """Bad user name, password or authorisation: retrying cannot help."""


class EndpointError(ParkcarbonError):
    """The HTTP endpoint (health, metrics) cannot listen on its address."""
