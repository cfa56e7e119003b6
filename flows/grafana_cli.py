"""``clickstream grafana``: build the dashboards as JSON, push them to a Grafana."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

grafana_app = typer.Typer(help="Grafana dashboards over the Redis figures: build and push.")
console = Console()


@grafana_app.command("build")
def build(
    check: Annotated[
        bool, typer.Option(help="Only check that grafana/dashboards/ is up to date.")
    ] = False,
) -> None:
    """Generate grafana/dashboards/*.json from the dashboards' code (funnels from the settings)."""
    from flows.settings import load_settings
    from grafana.build import DASHBOARDS, build, stale, write

    files = build(load_settings().funnel_definitions())
    if check:
        out_of_date = stale(files)
        if out_of_date:
            console.print(f"[red]stale in {DASHBOARDS}[/red]: {', '.join(out_of_date)}")
            console.print("run `clickstream grafana build` and commit the result")
            raise typer.Exit(1)
        console.print(f"{len(files)} dashboards up to date")
        return
    changed = write(files)
    console.print(f"{len(files)} dashboards in {DASHBOARDS} ({len(changed)} changed)")
