"""Dashboards as JSON: built from :mod:`grafana.boards`, written under ``grafana/dashboards/``.

The JSON is what Grafana's file provisioning loads and what ``clickstream grafana push`` sends.
It is deterministic (sorted keys, panel ids in order), so building twice gives the same bytes
and a stale file in the repository is found by ``clickstream grafana build --check``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from grafana import redis_query
from grafana.boards import all_boards
from state.funnels import Funnel

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    """A built dashboard as Grafana's JSON model, its panels numbered in order."""
    model: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return model


def build(funnels: Sequence[Funnel]) -> dict[str, str]:
    """Every dashboard's file name → its JSON text."""
    return {
        f"{name}.json": json.dumps(dashboard_json(board.build()), indent=2, sort_keys=True) + "\n"
        for name, board in all_boards(funnels).items()
    }


def write(files: dict[str, str], folder: Path = DASHBOARDS) -> list[Path]:
    """Write the files; return the paths whose content changed."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def stale(files: dict[str, str], folder: Path = DASHBOARDS) -> list[str]:
    """The files missing from ``folder`` or different there (or there and not built)."""
    present = {p.name for p in folder.glob("*.json")}
    out = [n for n, text in files.items() if n not in present or (folder / n).read_text() != text]
    return sorted(out + sorted(present - set(files)))


def parse(text: str) -> Dashboard:
    """A dashboard's JSON back into the SDK's model (queries as Redis queries)."""
    redis_query.register()
    return Dashboard.from_json(json.loads(text))
