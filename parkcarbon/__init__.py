"""parkcarbon: carbon and energy monitoring for industrial parks.

Shared foundations live here (settings, database access, domain models, units,
errors); each concern is a subpackage: ``parkcarbon.ingest``, ``parkcarbon.carbon``,
``parkcarbon.schema`` (migrations).
"""

__version__ = "0.1.0"
