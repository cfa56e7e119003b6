"""``clickstream trino``: the archive's DDL and reports on Trino."""

from __future__ import annotations

from typing import Annotated

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
    from flows.settings import load_settings
    from flows.trino_sql import run, statements

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
    from flows.settings import load_settings
    from flows.trino_sql import run

    run(load_settings(), "sync")


@trino_app.command("report")
def report(name: Annotated[str, typer.Argument(help="A report of sql/reports/.")]) -> None:
    """Run a report and print it as a table."""
    from flows.settings import load_settings
    from flows.trino_sql import reports, run

    if name not in reports():
        console.print(f"[red]unknown report {name!r}[/red]; reports: {', '.join(reports())}")
        raise typer.Exit(2)
    columns, rows = run(load_settings(), f"reports/{name}")
    table = Table(title=name)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
