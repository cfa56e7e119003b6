"""``python -m devstack up|down|status`` (``make stack-up``): development tooling, not shipped in
the wheel.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from devstack import stack
from devstack.base import ServiceStatus, State
from devstack.errors import StackError
from state.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="stack",
    help=(
        "The local development stack: Kafka, Redis and an S3 API server on the addresses in "
        "the settings, kept under .stack/ (downloads, data, logs/, run/)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_STYLE = {
    State.READY: "green",
    State.EXTERNAL: "cyan",
    State.STARTING: "yellow",
    State.STOPPED: "dim",
    State.PORT_BUSY: "red",
}

Only = Annotated[
    str | None,
    typer.Option(
        "--only",
        help=f"Comma-separated services ({','.join(stack.service_names())}); default all.",
        show_default=False,
    ),
]


def _names(only: str | None) -> list[str]:
    """The service names of an ``--only`` value."""
    return [name for name in (only or "").split(",") if name.strip()]


def _settings() -> Settings:
    """The settings, or exit 2 with the message naming the bad setting."""
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _say(line: str) -> None:
    """Print one progress line."""
    out.print(f"[dim]·[/dim] {line}")


def _table(statuses: list[ServiceStatus]) -> Table:
    """The statuses as a small table."""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("service", "state", "endpoint", "pid"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for found in statuses:
        style = _STYLE[found.state]
        table.add_row(
            found.name,
            f"[{style}]{found.state}[/{style}]",
            found.endpoint,
            str(found.pid or ""),
            found.detail,
        )
    return table


def _fail(exc: StackError) -> typer.Exit:
    """Print ``exc`` and return the exit to raise."""
    err.print(f"[bold red]error:[/bold red] {exc}", markup=True, soft_wrap=True)
    return typer.Exit(1)


@app.command()
def up(only: Only = None) -> None:
    """Start what is not running and wait until every service answers a real request."""
    settings = _settings()
    began = time.monotonic()
    try:
        statuses = stack.up(_names(only), settings, report=_say)
    except StackError as exc:
        raise _fail(exc) from None
    out.print(_table(statuses))
    out.print(f"[green]stack up[/green] in {time.monotonic() - began:.1f} s")


@app.command()
def down(
    only: Only = None,
    wipe: Annotated[
        bool, typer.Option("--wipe", help="Also delete the data under .stack/data.")
    ] = False,
) -> None:
    """Stop what the stack started (services it did not start are left running)."""
    settings = _settings()
    try:
        statuses = stack.down(_names(only), settings, wipe=wipe, report=_say)
    except StackError as exc:
        raise _fail(exc) from None
    out.print(_table(statuses))


@app.command()
def status(only: Only = None) -> None:
    """Show what answers at each service's address; exit 1 unless every one is ready."""
    settings = _settings()
    try:
        statuses = stack.status(_names(only), settings)
    except StackError as exc:
        raise _fail(exc) from None
    out.print(_table(statuses))
    if not all(found.ready for found in statuses):
        raise typer.Exit(1)
