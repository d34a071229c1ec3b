"""Push the boards to a running Grafana with grafana-client.

``publish_boards(api, boards)``: the folder ``parkcarbon`` (uid ``parkcarbon``) is
created when missing; each board is saved with ``POST /api/dashboards/db`` by uid into
that folder (``folderUid`` always given, so a board is never moved to the root;
``overwrite`` so the files win), and not saved at all when Grafana already holds the
same board in that folder (idempotent: a second run changes nothing, no new version).

``publish_organisations(api_for, orgs, ...)``: each enterprise's organisation is created
when missing (by name) and must have the id the generated provisioning gives it; its
datasource (logging in as the enterprise's role, password read from the secrets
directory) is created or updated by uid, then its enterprise board is published as above
with ``X-Grafana-Org-Id`` set to the organisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from parkcarbon.grafana.build import FOLDER, EnterpriseOrg
from parkcarbon.grafana.errors import PublishError

log = logging.getLogger(__name__)

FOLDER_UID = "parkcarbon"
MESSAGE = "parkcarbon grafana publish"
VOLATILE = ("id", "version")  # keys Grafana sets on its own


@dataclass(frozen=True)
class Published:
    org_id: int
    uid: str
    title: str
    action: str  # created | updated | unchanged


def connect(url: str, token: str | None = None, org_id: int | None = None) -> GrafanaApi:
    """A client for ``url`` (basic auth in the URL, or a service account token)."""
    api = GrafanaApi.from_url(url, credential=token) if token else GrafanaApi.from_url(url)
    if org_id is not None:
        api.client.organization_id = org_id
        api.client.s.headers["X-Grafana-Org-Id"] = str(org_id)
    return api


def check_reachable(api: GrafanaApi, shown_url: str) -> str:
    """Grafana's version, or ``PublishError`` in one line (``shown_url``: redacted)."""
    try:
        info = api.client.GET("/health")
    except GrafanaException as exc:
        raise _fail("answer its health check", exc) from exc
    except Exception as exc:  # niquests' connection errors, DNS, TLS
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PublishError(
            f"cannot reach Grafana at {shown_url}: {first}",
            hint="is Grafana running? set PARKCARBON_GRAFANA_URL or --url",
        ) from exc
    return str(info.get("version", "")) if isinstance(info, dict) else ""


def _fail(what: str, exc: GrafanaException) -> PublishError:
    return PublishError(f"Grafana refused to {what}: HTTP {exc.status_code} {exc.message}")


def ensure_folder(api: GrafanaApi, uid: str = FOLDER_UID, title: str = FOLDER) -> str:
    try:
        api.folder.get_folder(uid)
        return uid
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise _fail(f"read folder {uid}", exc) from exc
    try:
        api.folder.create_folder(title, uid=uid)
    except GrafanaException as exc:
        raise _fail(f"create folder {uid}", exc) from exc
    return uid


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    a = {k: v for k, v in current.items() if k not in VOLATILE}
    b = {k: v for k, v in wanted.items() if k not in VOLATILE}
    return a == b


def publish_boards(
    api: GrafanaApi, boards: Mapping[str, Mapping[str, Any]], *, org_id: int = 1
) -> list[Published]:
    folder = ensure_folder(api)
    out = []
    for data in boards.values():
        uid = str(data["uid"])
        action = "created"
        try:
            current = api.dashboard.get_dashboard(uid)
            meta = current.get("meta") or {}
            if _same(current.get("dashboard") or {}, data) and meta.get("folderUid") == folder:
                out.append(Published(org_id, uid, str(data["title"]), "unchanged"))
                continue
            action = "updated"
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise _fail(f"read dashboard {uid}", exc) from exc
        payload = {
            "dashboard": {**data, "id": None},
            "folderUid": folder,
            "overwrite": True,
            "message": MESSAGE,
        }
        try:
            api.dashboard.update_dashboard(payload)
        except GrafanaException as exc:
            raise _fail(f"save dashboard {uid}", exc) from exc
        log.info("grafana: %s dashboard %s in org %s", action, uid, org_id)
        out.append(Published(org_id, uid, str(data["title"]), action))
    return out


def ensure_organisation(api: GrafanaApi, org: EnterpriseOrg) -> int:
    """The organisation's id, created when missing; it must be ``org.org_id``."""
    try:
        existing = {o["name"]: int(o["id"]) for o in api.organizations.list_organization()}
        found = existing.get(org.name)
        if found is None:
            created = api.organization.create_organization({"name": org.name})
            found = int(created["orgId"])
    except GrafanaException as exc:
        raise _fail(f"create organisation {org.name!r}", exc) from exc
    if found != org.org_id:
        raise PublishError(
            f"Grafana organisation {org.name!r} has id {found}, the provisioning files "
            f"expect {org.org_id}",
            hint="create the organisations in registry order on a fresh Grafana, or "
            "rebuild the provisioning from the ids Grafana has",
        )
    return found


def datasource_payload(org: EnterpriseOrg, db: Any, password: str) -> dict[str, Any]:
    return {
        "name": "parkcarbon",
        "uid": org.datasource_uid,
        "type": "grafana-postgresql-datasource",
        "access": "proxy",
        "url": db.host,
        "user": org.role,
        "isDefault": True,
        "jsonData": {
            "database": db.database,
            "sslmode": "disable",
            "timescaledb": db.timescaledb,
            "postgresVersion": 1500,
            "timeInterval": "15m",
        },
        "secureJsonData": {"password": password},
    }


def ensure_datasource(api: GrafanaApi, payload: Mapping[str, Any]) -> str:
    uid = str(payload["uid"])
    try:
        try:
            api.datasource.get_datasource_by_uid(uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.datasource.create_datasource(dict(payload))
            return "created"
        api.datasource.update_datasource_by_uid(uid, dict(payload))
        return "updated"
    except GrafanaException as exc:
        raise _fail(f"save datasource {uid}", exc) from exc


def publish_organisations(
    admin: GrafanaApi,
    api_for: Callable[[int], GrafanaApi],
    orgs: Sequence[EnterpriseOrg],
    board_for: Callable[[EnterpriseOrg], Mapping[str, Any]],
    datasource_for: Callable[[EnterpriseOrg], Mapping[str, Any]],
) -> list[Published]:
    out = []
    for org in orgs:
        org_id = ensure_organisation(admin, org)
        api = api_for(org_id)
        ensure_datasource(api, datasource_for(org))
        out += publish_boards(api, {"enterprise": board_for(org)}, org_id=org_id)
    return out
