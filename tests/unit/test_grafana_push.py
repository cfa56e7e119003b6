"""``clickstream grafana push`` against a small local HTTP server that answers as Grafana's HTTP
API does for the endpoints grafana-client calls: the payloads sent, upserts by uid, a retry
on a 5xx, and a clear error on a refused token or an unreachable server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from grafana.build import build
from grafana.push import FOLDER_UID, PushError, datasource, push
from grafana.redis_query import DATASOURCE_UID
from state.funnels import DEFAULT_FUNNELS
from tests.support.job import ROOT

TOKEN = "glsa_test"


class FakeGrafana(ThreadingHTTPServer):
    """Grafana's data source, folder and dashboard endpoints, in memory."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_next: dict[str, int] = {}
        """Path → how many of its next calls answer 503."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        grafana, path = self.server, self.path
        grafana.calls.append((method, path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, {"message": "invalid API key"})
        if grafana.fail_next.get(path):
            grafana.fail_next[path] -= 1
            return self._answer(503, {"message": "database is locked"})
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else None
        if path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            if method == "GET":
                found = grafana.datasources.get(uid)
                return self._answer(200 if found else 404, found or {"message": "not found"})
            grafana.datasources[uid] = body
            return self._answer(200, {"message": "Datasource updated"})
        if path == "/api/datasources" and method == "POST":
            grafana.datasources[body["uid"]] = body
            return self._answer(200, {"message": "Datasource added", "id": 1})
        if path.startswith("/api/folders/") and method == "GET":
            uid = path.rsplit("/", 1)[1]
            if uid in grafana.folders:
                return self._answer(200, {"uid": uid, "title": grafana.folders[uid]})
            return self._answer(404, {"message": "folder not found"})
        if path == "/api/folders" and method == "POST":
            grafana.folders[body["uid"]] = body["title"]
            return self._answer(200, {"uid": body["uid"], "title": body["title"]})
        if path == "/api/dashboards/db" and method == "POST":
            grafana.dashboards[body["dashboard"]["uid"]] = body
            return self._answer(200, {"status": "success", "uid": body["dashboard"]["uid"]})
        return self._answer(404, {"message": f"no {method} {path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


FILES = build(DEFAULT_FUNNELS)
SOURCE = datasource("redis://redis:6379", "secret")


def test_a_push_creates_everything_then_a_second_one_updates_it(grafana: FakeGrafana) -> None:
    pauses: list[float] = []
    done = push(grafana.url, TOKEN, FILES, SOURCE, sleep=pauses.append)
    assert done[:2] == [f"created data source {DATASOURCE_UID}", f"created folder {FOLDER_UID}"]
    stored = grafana.datasources[DATASOURCE_UID]
    assert (stored["type"], stored["url"]) == ("redis-datasource", "redis://redis:6379")
    assert stored["secureJsonData"] == {"password": "secret"}
    assert grafana.folders == {FOLDER_UID: "Bank clickstream"}
    uids = {json.loads(text)["uid"] for text in FILES.values()}
    assert set(grafana.dashboards) == uids
    for uid, body in grafana.dashboards.items():
        assert body["folderUid"] == FOLDER_UID and body["overwrite"] is True
        assert body["dashboard"]["id"] is None and body["dashboard"]["uid"] == uid
        sent = body["dashboard"]["panels"]
        (original,) = [json.loads(t) for t in FILES.values() if json.loads(t)["uid"] == uid]
        assert sent == original["panels"]
    assert pauses == []

    again = push(grafana.url, TOKEN, FILES, datasource("redis://other:6379"), sleep=pauses.append)
    assert again[0] == f"updated data source {DATASOURCE_UID}"
    assert not any(line.startswith("created") for line in again)
    assert grafana.datasources[DATASOURCE_UID]["url"] == "redis://other:6379"
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in grafana.calls


def test_a_5xx_is_retried_with_a_growing_pause(grafana: FakeGrafana) -> None:
    grafana.fail_next["/api/dashboards/db"] = 2
    pauses: list[float] = []
    done = push(grafana.url, TOKEN, FILES, SOURCE, sleep=pauses.append)
    assert pauses == [0.5, 1.0]
    assert len([line for line in done if line.startswith("saved dashboard")]) == len(FILES)
    grafana.fail_next["/api/dashboards/db"] = 10
    with pytest.raises(PushError, match=r"after 4 attempts.*503"):
        push(grafana.url, TOKEN, FILES, SOURCE, sleep=pauses.append)


def test_a_refused_token_stops_at_once_with_what_to_do(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match=r"refused the token \(401 Unauthorized\).*--token"):
        push(grafana.url, "wrong", FILES, SOURCE, sleep=lambda _: None)
    assert len(grafana.calls) == 1


def test_the_command_reports_an_unreachable_grafana_and_exits_non_zero(
    grafana: FakeGrafana,
) -> None:
    port = grafana.server_address[1]
    grafana.shutdown()
    grafana.server_close()
    result = subprocess.run(
        [sys.executable, "-m", "flows", "grafana", "push", "--url", f"http://127.0.0.1:{port}",
         "--token", TOKEN],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "unreachable" in result.stdout and "after 4 attempts" in result.stdout
