"""Push the data source, the folder and the dashboards to a running Grafana (grafana-client).

Each is an upsert by uid, so a push is repeatable: the data source is updated (or created), the
folder created when missing, each dashboard saved with ``overwrite``. A 5xx answer, a timeout or
a refused connection is retried a few times with a growing pause; a refused token or any other
4xx stops at once with what Grafana said.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from grafana.redis_query import DATASOURCE_UID, PLUGIN

FOLDER_UID = "bank-clickstream"
FOLDER_TITLE = "Bank clickstream"
T = TypeVar("T")


class PushError(Exception):
    """Grafana could not be reached, refused the token, or rejected what was sent."""


def datasource(redis_url: str, password: str | None = None) -> dict[str, Any]:
    """The Redis data source as the API takes it (as grafana/provisioning declares it)."""
    payload: dict[str, Any] = {
        "name": "Bank clickstream Redis",
        "uid": DATASOURCE_UID,
        "type": PLUGIN,
        "access": "proxy",
        "url": redis_url,
        "isDefault": False,
        "jsonData": {"client": "standalone", "poolSize": 5, "timeout": 10, "acl": False},
    }
    if password:
        payload["secureJsonData"] = {"password": password}
    return payload


@dataclass
class Pusher:
    """Upserts to one Grafana; ``sleep`` waits between attempts (tests pass a fake)."""

    api: GrafanaApi
    url: str
    attempts: int = 4
    sleep: Callable[[float], None] = time.sleep
    done: list[str] = field(default_factory=list)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except GrafanaUnauthorizedError:
                raise PushError(
                    f"Grafana at {self.url} refused the token (401 Unauthorized) while {what}: "
                    "give a service-account token with the Editor role (--token)"
                ) from None
            except (GrafanaServerError, GrafanaTimeoutError, niquests.RequestException) as exc:
                if attempt == self.attempts:
                    raise PushError(
                        f"Grafana at {self.url} is unreachable or failing while {what} "
                        f"after {attempt} attempts: {exc}"
                    ) from exc
                self.sleep(0.5 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def datasource(self, payload: dict[str, Any]) -> None:
        """Update the data source by uid, or create it."""
        uid = payload["uid"]
        try:
            self._call(
                "reading the data source", lambda: self.api.datasource.get_datasource_by_uid(uid)
            )
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise self._rejected("reading the data source", exc) from exc
            self._send(
                "creating the data source", lambda: self.api.datasource.create_datasource(payload)
            )
            self.done.append(f"created data source {uid}")
            return
        self._send(
            "updating the data source",
            lambda: self.api.datasource.update_datasource_by_uid(uid, payload),
        )
        self.done.append(f"updated data source {uid}")

    def folder(self) -> None:
        """Create the dashboards' folder when it is missing."""
        try:
            self._call("reading the folder", lambda: self.api.folder.get_folder(FOLDER_UID))
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise self._rejected("reading the folder", exc) from exc
            self._send(
                "creating the folder",
                lambda: self.api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID),
            )
            self.done.append(f"created folder {FOLDER_UID}")

    def dashboard(self, name: str, text: str) -> None:
        """Save one dashboard in the folder, over any earlier version."""
        model = json.loads(text)
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "clickstream grafana push",
        }
        self._send(f"saving {name}", lambda: self.api.dashboard.update_dashboard(body))
        self.done.append(f"saved dashboard {model['uid']} ({name})")

    def _send(self, what: str, call: Callable[[], Any]) -> None:
        try:
            self._call(what, call)
        except GrafanaClientError as exc:
            raise self._rejected(what, exc) from exc

    def _rejected(self, what: str, exc: GrafanaClientError) -> PushError:
        return PushError(
            f"Grafana at {self.url} rejected {what} ({exc.status_code}): {exc.message}"
        )


def push(
    url: str,
    token: str,
    files: dict[str, str],
    source: dict[str, Any],
    *,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Upsert the data source, the folder and every dashboard; return what was done."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    pusher = Pusher(api, url, sleep=sleep)
    pusher.datasource(source)
    pusher.folder()
    for name, text in sorted(files.items()):
        pusher.dashboard(name, text)
    return pusher.done
