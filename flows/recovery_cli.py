"""``clickstream recovery``: the job's recovery store, created once and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

recovery_app = typer.Typer(help="The recovery store the job resumes from after a crash.")
console = Console(stderr=True)


@recovery_app.command("init")
def init(
    store: Annotated[Path, typer.Argument(help="The store's folder (CLICKSTREAM_RECOVERY_DIR).")],
    partitions: Annotated[
        int,
        typer.Option(
            min=1,
            help="Partitions of a new store; fixed for its life, at least the processes of the "
            "largest cluster that will run on it.",
        ),
    ] = 1,
) -> None:
    """Create the store whole if there is none; otherwise check that it is whole and has this
    many partitions. Exit status 1 with the reason when the job must not start on it (the
    chart's init container runs this before every start).
    """
    from flows.recovery_store import StoreError, prepare_store

    try:
        typer.echo(prepare_store(store, partitions))
    except StoreError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(1) from None
