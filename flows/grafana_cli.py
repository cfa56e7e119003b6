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
    from grafana.build import DASHBOARDS, build, stale, write
    from state.settings import load_settings

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


@grafana_app.command("push")
def push(
    url: Annotated[str, typer.Option(help="Grafana's base URL, e.g. http://grafana:3000.")],
    token: Annotated[
        str,
        typer.Option(envvar="CLICKSTREAM_GRAFANA_TOKEN", help="A service-account token (Editor)."),
    ] = "",
    redis_url: Annotated[
        str | None,
        typer.Option(help="The Redis as Grafana reaches it (default: the job's redis_url)."),
    ] = None,
    redis_password: Annotated[
        str | None, typer.Option(envvar="CLICKSTREAM_GRAFANA_REDIS_PASSWORD", help="Redis AUTH.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print what would be sent; send nothing.")] = False,
) -> None:
    """Upsert the Redis data source, the folder and the dashboards into a Grafana."""
    from grafana.build import build
    from grafana.push import FOLDER_UID, PushError, datasource
    from grafana.push import push as send
    from state.settings import load_settings

    settings = load_settings()
    files = build(settings.funnel_definitions())
    source = datasource(redis_url or settings.redis_url, redis_password)
    if dry_run:
        console.print(f"would upsert data source {source['uid']} ({source['url']})")
        console.print(f"would create folder {FOLDER_UID} if missing")
        for name in sorted(files):
            console.print(f"would save dashboard {name}")
        return
    if not token:
        console.print("[red]no token[/red]: pass --token or set CLICKSTREAM_GRAFANA_TOKEN")
        raise typer.Exit(2)
    try:
        done = send(url, token, files, source)
    except PushError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    for line in done:
        console.print(line)
