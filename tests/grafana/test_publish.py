"""`parkcarbon grafana publish` against a local HTTP server that answers the Grafana HTTP
API calls grafana-client makes (folders, dashboards, organisations, datasources) the way
Grafana does, and records every call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from parkcarbon.cli import cli
from parkcarbon.grafana.build import build_boards
from parkcarbon.registry import load_registry
from support import EXAMPLE_REGISTRY, ROOT


class FakeGrafana:
    """Grafana's API semantics for what publish uses, state per organisation."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.folders: dict[int, dict[str, str]] = {1: {}}
        self.dashboards: dict[int, dict[str, dict[str, Any]]] = {1: {}}
        self.datasources: dict[int, dict[str, dict[str, Any]]] = {1: {}}
        self.orgs: dict[int, str] = {1: "Main Org."}
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, org: int, body: Any) -> tuple[int, Any]:
        self.calls.append({"method": method, "path": path, "org": org, "body": body})
        parts = path.split("?")[0].strip("/").split("/")[1:]  # after "api"
        if parts == ["health"]:
            return 200, {"database": "ok", "version": "11.3.0"}
        if parts[:1] == ["folders"]:
            if method == "GET" and len(parts) == 2:
                if parts[1] in self.folders[org]:
                    return 200, {"uid": parts[1], "title": self.folders[org][parts[1]]}
                return 404, {"message": "folder not found"}
            if method == "POST":
                self.folders[org][body["uid"]] = body["title"]
                return 200, {"uid": body["uid"], "title": body["title"]}
        if parts[:2] == ["dashboards", "uid"] and method == "GET":
            found = self.dashboards[org].get(parts[2])
            if found is None:
                return 404, {"message": "Dashboard not found"}
            return 200, found
        if parts == ["dashboards", "db"] and method == "POST":
            dash = dict(body["dashboard"])
            uid = dash["uid"]
            old = self.dashboards[org].get(uid)
            if old is not None and not body.get("overwrite"):
                return 412, {"status": "version-mismatch", "message": "changed"}
            dash["id"] = old["dashboard"]["id"] if old else len(self.dashboards[org]) + 1
            dash["version"] = old["dashboard"]["version"] + 1 if old else 1
            folder = body.get("folderUid") or ""  # omitted: Grafana moves it to the root
            self.dashboards[org][uid] = {"dashboard": dash, "meta": {"folderUid": folder}}
            return 200, {"uid": uid, "status": "success", "version": dash["version"]}
        if parts == ["orgs"] and method == "GET":
            return 200, [{"id": i, "name": n} for i, n in sorted(self.orgs.items())]
        if parts == ["orgs"] and method == "POST":
            new = max(self.orgs) + 1
            self.orgs[new] = body["name"]
            for table in (self.folders, self.dashboards, self.datasources):
                table[new] = {}
            return 200, {"orgId": str(new), "message": "Organization created"}
        if parts[:2] == ["datasources", "uid"]:
            uid = parts[2]
            if method == "GET":
                if uid not in self.datasources[org]:
                    return 404, {"message": "Data source not found"}
                return 200, self.datasources[org][uid]
            if method == "PUT":
                self.datasources[org][uid] = body
                return 200, {"message": "Datasource updated"}
        if parts == ["datasources"] and method == "POST":
            self.datasources[org][body["uid"]] = body
            return 200, {"message": "Datasource added"}
        return 404, {"message": f"no route {method} {path}"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            org = int(self.headers.get("X-Grafana-Org-Id") or 1)
            with fake.lock:
                fake.calls_auth = self.headers.get("Authorization")  # type: ignore[attr-defined]
                status, payload = fake.handle(self.command, self.path, org, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://admin:secret@127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def publish(url: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner(env=env).invoke(
        cli, ["--registry", str(EXAMPLE_REGISTRY), "grafana", "publish", "--url", url,
              "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_publish_creates_the_folder_and_is_idempotent_by_uid(
    grafana: tuple[FakeGrafana, str]
) -> None:
    fake, url = grafana
    first = publish(url)
    boards = build_boards()
    assert [r["action"] for r in first] == ["created"] * len(boards)
    assert fake.folders[1] == {"parkcarbon": "parkcarbon"}
    saves = [c for c in fake.calls if c["path"] == "/api/dashboards/db"]
    assert len(saves) == len(boards)
    for call in saves:
        assert call["body"]["folderUid"] == "parkcarbon"  # never to the root
        assert call["body"]["overwrite"] is True and call["body"]["dashboard"]["id"] is None
    assert {c["body"]["dashboard"]["uid"] for c in saves} == {b["uid"] for b in boards.values()}
    assert fake.calls_auth.startswith("Basic ")  # type: ignore[attr-defined]

    fake.calls.clear()
    again = publish(url)
    assert [r["action"] for r in again] == ["unchanged"] * len(boards)
    assert [c for c in fake.calls if c["method"] != "GET"] == []  # nothing written
    assert all(d["dashboard"]["version"] == 1 for d in fake.dashboards[1].values())


def test_publish_updates_a_changed_board_and_moves_it_back_into_the_folder(
    grafana: tuple[FakeGrafana, str]
) -> None:
    fake, url = grafana
    publish(url)
    park = fake.dashboards[1]["parkcarbon-park"]
    park["dashboard"]["title"] = "edited in the UI"
    fake.dashboards[1]["parkcarbon-quality"]["meta"]["folderUid"] = ""  # moved to the root
    actions = {r["uid"]: r["action"] for r in publish(url)}
    assert actions == {"parkcarbon-park": "updated", "parkcarbon-quality": "updated",
                       "parkcarbon-enterprise": "unchanged", "parkcarbon-alerts": "unchanged"}
    assert fake.dashboards[1]["parkcarbon-park"]["dashboard"]["title"] == "园区总览 Park overview"
    assert fake.dashboards[1]["parkcarbon-park"]["dashboard"]["version"] == 2
    assert fake.dashboards[1]["parkcarbon-quality"]["meta"]["folderUid"] == "parkcarbon"


def test_publish_orgs_gives_each_enterprise_its_org_role_and_board(
    grafana: tuple[FakeGrafana, str], tmp_path: Path
) -> None:
    fake, url = grafana
    registry = load_registry(EXAMPLE_REGISTRY)
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    for e in registry.enterprises:
        (secrets / f"parkcarbon_e_{e.id.lower()}.password").write_text(f"pw-{e.id}\n")
    env = {"PARKCARBON_SECRETS_DIR": str(secrets)}
    out = publish(url, "--orgs", env=env)
    n = len(registry.enterprises)
    assert sorted(fake.orgs) == list(range(1, n + 2))
    for i, e in enumerate(registry.enterprises, 2):
        assert fake.orgs[i] == f"{e.id} {e.name_zh}"
        (ds,) = fake.datasources[i].values()
        assert ds["user"] == f"parkcarbon_e_{e.id.lower()}"
        assert ds["secureJsonData"]["password"] == f"pw-{e.id}"
        assert ds["jsonData"]["timescaledb"] is True
        (board,) = fake.dashboards[i].values()
        assert board["meta"]["folderUid"] == "parkcarbon"
        uids = {t["datasource"]["uid"] for p in board["dashboard"]["panels"]
                for t in p.get("targets", [])}
        assert uids == {ds["uid"]}
    assert len([r for r in out if r["action"] == "created"]) == len(build_boards()) + n
    # the org header went with every call for an enterprise's org
    org_calls = [c for c in fake.calls if c["org"] != 1]
    assert {c["org"] for c in org_calls} == set(range(2, n + 2))

    fake.calls.clear()
    again = publish(url, "--orgs", env=env)
    assert all(r["action"] == "unchanged" for r in again)
    assert [c["method"] for c in fake.calls if c["method"] == "POST"] == []


def test_publish_orgs_stops_on_an_organisation_id_that_does_not_match(
    grafana: tuple[FakeGrafana, str], tmp_path: Path
) -> None:
    fake, url = grafana
    fake.orgs[2] = "someone else's org"
    for table in (fake.folders, fake.dashboards, fake.datasources):
        table[2] = {}
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for e in load_registry(EXAMPLE_REGISTRY).enterprises:
        (secrets / f"parkcarbon_e_{e.id.lower()}.password").write_text("x")
    proc = run("grafana", "publish", "--url", url, "--orgs",
               PARKCARBON_SECRETS_DIR=str(secrets))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-2:] == [
        "parkcarbon: error: Grafana organisation 'E01 库车塔河石化炼油有限公司' has id 3, the "
        "provisioning files expect 2",
        "hint: create the organisations in registry order on a fresh Grafana, or rebuild the "
        "provisioning from the ids Grafana has",
    ]
    assert "secret" not in proc.stderr + proc.stdout  # the URL's password is never shown


def test_publish_to_nothing_listening_is_one_line() -> None:
    proc = run("grafana", "publish", "--url", "http://admin:secret@127.0.0.1:1")
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "parkcarbon: error: cannot reach Grafana at http://admin:***@127.0.0.1:1: ")
    assert "Traceback" not in proc.stderr and "secret" not in proc.stderr


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    full.update(PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY), **env)
    return subprocess.run([sys.executable, "-m", "parkcarbon", *args], capture_output=True,
                          text=True, cwd=ROOT, env=full, timeout=120)
