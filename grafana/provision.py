"""What the settings and the registry decide about the boards and their provisioning.

The reader and enterprise role names come from ``parkcarbon.security.roles`` (the
names ``db migrate`` creates), the enterprises from the registry file, the timezone,
energy basis and storage mode from the settings.
"""

from __future__ import annotations

from pathlib import Path

from parkcarbon.grafana.build import DatabaseTarget, EnterpriseOrg, enterprise_orgs
from parkcarbon.grafana.build import provisioning_files as _files
from parkcarbon.grafana.panels import BoardContext
from parkcarbon.registry import load_registry
from parkcarbon.security import roles
from parkcarbon.settings import Settings

REPO_PROVISIONING = Path(__file__).resolve().parent / "provisioning"


def board_context(settings: Settings) -> BoardContext:
    tce = "tce_equivalent" if settings.energy_basis == "equivalent" else "tce_equal_value"
    return BoardContext(
        timezone=settings.timezone,
        tce_column=tce,
        min_coverage_pct=settings.targets_min_coverage_pct,
    )


def database_target(settings: Settings) -> DatabaseTarget:
    return DatabaseTarget(
        host=settings.grafana_db_host,
        database=settings.grafana_db_name,
        timescaledb=settings.storage_mode != "plain",
    )


def organisations(settings: Settings) -> list[EnterpriseOrg]:
    """One organisation per registry enterprise, in registry order."""
    registry = load_registry(settings.registry_file)
    return enterprise_orgs(
        [(e.id, e.name_zh) for e in registry.enterprises],
        lambda ent: roles.enterprise_role(settings, ent),
        roles.grafana_password_reference,
    )


def provisioning_files(settings: Settings) -> dict[str, str]:
    """Everything ``grafana build`` writes, for these settings."""
    reader = roles.reader_role(settings)
    return _files(
        board_context(settings),
        database_target(settings),
        reader,
        roles.grafana_password_reference(reader),
        organisations(settings),
    )
