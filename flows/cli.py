"""The ``clickstream`` command line."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from state.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="clickstream",
    help=(
        "bank-clickstream: a retail bank's customer events into live Redis analytics, "
        "real-time offers and a Parquet archive on S3.\n\n"
        "Configuration comes from CLICKSTREAM_* environment variables "
        "(see `clickstream settings`)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def run(
    source: Annotated[
        str,
        typer.Option(help="Where events come from: 'kafka' (the events topics) or 'file:PATH'."),
    ] = "kafka",
    recovery_dir: Annotated[
        Path | None,
        typer.Option(help="Recovery store: resume from it after a crash (created if missing)."),
    ] = None,
    tail: Annotated[
        bool,
        typer.Option(help="Keep waiting for new Kafka messages; --no-tail stops at the end."),
    ] = True,
    workers: Annotated[int, typer.Option(min=1, help="Bytewax worker threads.")] = 1,
    process_id: Annotated[
        int | None, typer.Option(min=0, help="This process's index in a cluster (from 0).")
    ] = None,
    process_id_from_hostname: Annotated[
        bool,
        typer.Option(
            help="Take the process index from the host name's last number, as a StatefulSet's "
            "pod name ends with its ordinal (bank-clickstream-2 → 2)."
        ),
    ] = False,
    addresses: Annotated[
        str | None,
        typer.Option(help="host:port of every process of the cluster, separated by ';'."),
    ] = None,
    api: Annotated[bool, typer.Option(help="Serve Bytewax's API and /metrics.")] = True,
) -> None:
    """Run the stream job: decode, dedupe, aggregate to Redis, archive to S3, dead letters."""
    from flows.runner import hostname_ordinal, run_job

    if process_id_from_hostname:
        if process_id is not None:
            console.print("[red]error:[/red] give --process-id or --process-id-from-hostname")
            raise typer.Exit(2)
        try:
            process_id = hostname_ordinal(socket.gethostname())
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _settings(recovery_dir=recovery_dir)
    console.print(
        f"[bold]bank-clickstream[/bold] reading {source}"
        + (f", recovery store {settings.recovery_dir}" if settings.recovery_dir else "")
    )
    try:
        run_job(
            settings,
            source,
            tail=tail,
            workers=workers,
            api=api,
            process_id=process_id,
            addresses=addresses.split(";") if addresses else None,
        )
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command("settings")
def show_settings() -> None:
    """Print the effective configuration (secrets masked)."""
    for name, value in _settings().masked().items():
        typer.echo(f"{name}={value}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="Simulated customers.")] = 2000,
    rate: Annotated[float, typer.Option(min=1, help="Simulated events per second.")] = 500,
) -> None:
    """Start the local stack, the simulator and the job; show a live summary until Ctrl-C."""
    from flows.demo import run_demo

    run_demo(_settings(), customers=customers, rate=rate)


def _mount_optional() -> None:
    from flows.campaigns_cli import campaigns_app
    from flows.customers_cli import customers_app
    from flows.grafana_cli import grafana_app
    from flows.offers_cli import offers_app
    from flows.recovery_cli import recovery_app
    from flows.trino_cli import trino_app
    from sources.simulator_cli import simulate

    app.command("simulate")(simulate)
    app.add_typer(customers_app, name="customers")
    app.add_typer(trino_app, name="trino")
    app.add_typer(grafana_app, name="grafana")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(offers_app, name="offers")
    app.add_typer(recovery_app, name="recovery")


_mount_optional()


def main() -> None:
    """Entry point of the ``clickstream`` console script."""
    app()
