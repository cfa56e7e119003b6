"""The archive's SQL: DDL, partition sync and the reports, run on Trino."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flows.trino_funnels import funnel_placeholders
from state.archive_layout import EVENTS_TABLE, OFFERS_TABLE, SESSIONS_TABLE
from state.settings import Settings

SQL = Path(__file__).resolve().parent / "sql"
EVENT_SESSIONS = "event_sessions"
# offer_uplift counts conversions up to 7 days after an offer's send time, which is at most
# 2 days (the longest hold, flows.offers_step.OFFER_MAX_HOLD_MS) after its trigger.
UPLIFT_DAYS_AFTER = 7 + 2


@dataclass(frozen=True)
class DayRange:
    """The UTC days a report reads, both ends included; an end left out is open.

    Every table is read from the partitions of those days only: ``events`` by event time,
    ``sessions`` by the session's start, ``offers`` by the trigger; ``event_sessions`` holds the
    events of the sessions that started in the range (up to the day the last of them ended), and
    ``offer_uplift`` looks for conversions up to 9 days past the range (the offers' window).
    """

    first: date | None = None
    last: date | None = None

    @property
    def bounded(self) -> bool:
        """Whether the range leaves anything out."""
        return self.first is not None or self.last is not None

    def where(self, column: str = "dt", days_after: int = 0, last: date | None = None) -> str:
        """The range as a predicate on a partition column (``TRUE`` when unbounded)."""
        last = last or self.last
        terms = []
        if self.first is not None:
            terms.append(f"{column} >= '{self.first.isoformat()}'")
        if last is not None:
            terms.append(f"{column} <= '{(last + timedelta(days=days_after)).isoformat()}'")
        return " AND ".join(terms) or "TRUE"


def report_tables(
    catalog: str, schema: str, days: DayRange, events_through: date | None = None
) -> dict[str, str]:
    """The reports' table placeholders: the tables themselves, or their partitions in ``days``.

    ``events_through`` is the last day an event of a session started in the range can be in
    (the end of its longest session), for ``event_sessions``.
    """

    def table(name: str) -> str:
        return f"{catalog}.{schema}.{name}"

    if not days.bounded:
        names = (EVENTS_TABLE, SESSIONS_TABLE, OFFERS_TABLE, EVENT_SESSIONS)
        return {n: table(n) for n in names} | {"events_after_offers": table(EVENTS_TABLE)}

    def part(name: str, where: str) -> str:
        return f"(SELECT * FROM {table(name)} WHERE {where})"

    sessions_events = f"{days.where('session_dt')} AND {days.where(last=events_through)}"
    return {
        EVENTS_TABLE: part(EVENTS_TABLE, days.where()),
        SESSIONS_TABLE: part(SESSIONS_TABLE, days.where()),
        OFFERS_TABLE: part(OFFERS_TABLE, days.where()),
        EVENT_SESSIONS: part(EVENT_SESSIONS, sessions_events),
        "events_after_offers": part(EVENTS_TABLE, days.where(days_after=UPLIFT_DAYS_AFTER)),
    }


def statements(
    name: str,
    settings: Settings,
    schema: str | None = None,
    days: DayRange | None = None,
    events_through: date | None = None,
) -> list[str]:
    """The statements of ``sql/<name>.sql`` with the placeholders filled in.

    Besides ``{catalog}``, ``{schema}`` and ``{location}``, the tables of a report are filled in
    as the partitions of ``days`` (see :func:`report_tables`), and the ``{funnel_*}``
    placeholders of the funnel report from the configured funnels (see
    :mod:`flows.trino_funnels`).
    """
    text = _text(name)
    schema = schema or settings.trino_schema
    filled = text.format(
        catalog=settings.trino_catalog,
        schema=schema,
        location=f"s3://{settings.s3_bucket}/{settings.s3_prefix.strip('/')}",
        **report_tables(settings.trino_catalog, schema, days or DayRange(), events_through),
        **funnel_placeholders(settings.funnel_definitions()),
    )
    body = "\n".join(line for line in filled.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _text(name: str) -> str:
    return (SQL / f"{name}.sql").read_text()


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


def _events_through(cursor: Any, settings: Settings, schema: str, days: DayRange) -> date | None:
    """The last day an event of a session started in ``days`` is in (None: no such session)."""
    sessions = f"{settings.trino_catalog}.{schema}.{SESSIONS_TABLE}"
    cursor.execute(f"SELECT max(end_time) FROM {sessions} WHERE {days.where()}")
    (end,) = cursor.fetchone()
    return None if end is None else max(end.date(), days.last or end.date())


def run(
    settings: Settings, name: str, schema: str | None = None, days: DayRange | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run every statement of ``sql/<name>.sql`` (a report: over the partitions of ``days``);
    return the last one's columns and rows.
    """
    cursor = connect(settings).cursor()
    schema = schema or settings.trino_schema
    through = None
    if days is not None and days.last is not None and "{event_sessions}" in _text(name):
        through = _events_through(cursor, settings, schema, days)
    columns: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for statement in statements(name, settings, schema, days, through):
        cursor.execute(statement)
        rows = [tuple(r) for r in cursor.fetchall()]
        columns = [d[0] for d in cursor.description or []]
    return columns, rows
