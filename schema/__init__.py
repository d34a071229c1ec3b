"""Database schema and migrations (installed as ``parkcarbon.schema``).

Migrations are the ``NNNN_name.sql`` files in this folder, applied in order, each in
its own transaction, under an advisory lock so concurrent ``db migrate`` runs are
safe. ``NNNN_name.timescale.sql`` / ``NNNN_name.plain.sql`` follow the common file in
the same transaction, for the storage mode the database was set up with.
"""

from parkcarbon.schema.migrate import (
    Migration,
    MigrationResult,
    SchemaStatus,
    discover,
    migrate,
    status,
)
from parkcarbon.schema.rollups import refresh_rollups

__all__ = [
    "Migration",
    "MigrationResult",
    "SchemaStatus",
    "discover",
    "migrate",
    "refresh_rollups",
    "status",
]
