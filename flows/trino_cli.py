"""``clickstream trino``: the archive's DDL and reports on Trino."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

trino_app = typer.Typer(help="The Parquet archive as Trino tables: DDL, partition sync, reports.")
console = Console()


@trino_app.command("ddl")
def ddl(
    apply: Annotated[bool, typer.Option(help="Run it on Trino instead of printing it.")] = False,
) -> None:
    """Print (or apply) the DDL of the events, sessions and offers tables, then sync partitions."""
    from flows.trino_sql import run, statements
    from state.settings import load_settings

    settings = load_settings()
    if not apply:
        for statement in statements("ddl", settings) + statements("sync", settings):
            typer.echo(statement + ";\n")
        return
    run(settings, "ddl")
    run(settings, "sync")
    console.print(f"tables ready in {settings.trino_catalog}.{settings.trino_schema}")


@trino_app.command("sync")
def sync() -> None:
    """Register the hour partitions written since the last sync."""
    from flows.trino_sql import run
    from state.settings import load_settings

    run(load_settings(), "sync")


class ReportFormat(StrEnum):
    """How a report is printed."""

    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: Any) -> Any:
    """A value as CSV and JSON take it: dates as ISO text, decimals as numbers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def report_table(name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A report as a rich table: on a narrow terminal headers and cells fold onto more lines,
    never cut short.
    """
    table = Table(title=name)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def report_text(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: ReportFormat) -> str:
    """A report as CSV (a header line, then a line per row) or JSON (a list of objects)."""
    if fmt is ReportFormat.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return out.getvalue()
    return json.dumps([{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows])


DAY = ["%Y-%m-%d"]


def day_range(
    day: datetime | None, first: datetime | None, last: datetime | None
) -> tuple[date | None, date | None]:
    """The first and last day of ``--day`` or ``--from`` / ``--to`` (None: open)."""
    if day is not None and (first is not None or last is not None):
        raise typer.BadParameter("give --day, or --from and/or --to, not both")
    if day is not None:
        return day.date(), day.date()
    start, end = (first.date() if first else None), (last.date() if last else None)
    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}")
    return start, end


@trino_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="A report of flows/sql/reports/.")],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="A table to read, or CSV / JSON to process.")
    ] = ReportFormat.table,
    day: Annotated[
        datetime | None, typer.Option("--day", formats=DAY, help="Only this UTC day.")
    ] = None,
    first: Annotated[
        datetime | None, typer.Option("--from", formats=DAY, help="From this UTC day on.")
    ] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=DAY, help="Up to this UTC day, included.")
    ] = None,
) -> None:
    """Run a report and print it; ``--day`` or ``--from``/``--to`` read only those days'
    partitions (sessions by their start, offers by their trigger; docs/archive.md).
    """
    from flows.trino_sql import DayRange, reports, run
    from state.settings import load_settings

    if name not in reports():
        console.print(f"[red]unknown report {name!r}[/red]; reports: {', '.join(reports())}")
        raise typer.Exit(2)
    days = DayRange(*day_range(day, first, last))
    columns, rows = run(load_settings(), f"reports/{name}", days=days)
    if fmt is ReportFormat.table:
        console.print(report_table(name, columns, rows))
    else:
        typer.echo(report_text(columns, rows, fmt), nl=fmt is ReportFormat.json)
