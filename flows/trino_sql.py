"""The archive's SQL: DDL, partition sync and the reports, run on Trino."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.settings import Settings
from flows.trino_funnels import funnel_placeholders

SQL = Path(__file__).resolve().parents[1] / "sql"


def statements(name: str, settings: Settings, schema: str | None = None) -> list[str]:
    """The statements of ``sql/<name>.sql`` with the placeholders filled in.

    Besides ``{catalog}``, ``{schema}`` and ``{location}``, the ``{funnel_*}`` placeholders of the
    funnel report are filled in from the configured funnels (see :mod:`flows.trino_funnels`).
    """
    text = (SQL / f"{name}.sql").read_text()
    filled = text.format(
        catalog=settings.trino_catalog,
        schema=schema or settings.trino_schema,
        location=f"s3://{settings.s3_bucket}/{settings.s3_prefix.strip('/')}",
        **funnel_placeholders(settings.funnel_definitions()),
    )
    body = "\n".join(line for line in filled.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def reports() -> list[str]:
    """The names of the shipped reports (``sql/reports/*.sql``)."""
    return sorted(p.stem for p in (SQL / "reports").glob("*.sql"))


def connect(settings: Settings) -> Any:
    """A DB-API connection to the configured Trino."""
    from urllib.parse import urlsplit

    import trino

    url = urlsplit(settings.trino_url)
    return trino.dbapi.connect(
        host=url.hostname or "127.0.0.1",
        port=url.port or 8080,
        http_scheme=url.scheme,
        user="bank-clickstream",
        catalog=settings.trino_catalog,
    )


def run(
    settings: Settings, name: str, schema: str | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run every statement of ``sql/<name>.sql``; return the last one's columns and rows."""
    cursor = connect(settings).cursor()
    columns: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for statement in statements(name, settings, schema):
        cursor.execute(statement)
        rows = [tuple(r) for r in cursor.fetchall()]
        columns = [d[0] for d in cursor.description or []]
    return columns, rows
