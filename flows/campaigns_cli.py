"""``clickstream campaigns``: check a campaigns folder before the job picks it up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from offers.api import Campaign
from offers.check import (
    CheckReport,
    check_dir,
    describe_trigger,
    describe_triggers,
    format_duration,
)

campaigns_app = typer.Typer(help="Campaign files: check them before the running job reloads them.")
_STYLE = {"error": "red", "warning": "yellow", "note": "cyan"}
WIDE = 140
"""Console columns from which the campaigns are shown as a table."""


def _today(timezone: str | None) -> datetime:
    from flows.settings import SettingsError, load_settings

    if timezone is None:
        try:
            timezone = load_settings().bank_timezone
        except SettingsError as exc:
            Console(stderr=True).print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from None
    return datetime.now(ZoneInfo(timezone))


def campaigns_table(campaigns: tuple[Campaign, ...], directory: Path) -> Table:
    """The campaigns as a table, one row each."""
    table = Table(title=f"campaigns in {directory}", show_lines=True)
    table.add_column("id", no_wrap=True, style="bold")
    for name in ("ver", "prio", "channel"):
        table.add_column(name, justify="right" if name != "channel" else "left")
    table.add_column("valid from\nuntil", min_width=10)
    for name in ("delay", "cool\ndown", "daily\ncap", "control\nshare"):
        table.add_column(name, justify="right")
    table.add_column("triggers", ratio=3, min_width=20, overflow="fold")
    table.add_column("file", ratio=1, min_width=12, overflow="fold")
    for found in campaigns:
        table.add_row(
            found.id,
            str(found.version),
            str(found.priority),
            found.channel,
            f"{found.valid_from or '-'}\n{found.valid_until or '-'}",
            format_duration(found.send_delay_ms),
            format_duration(found.cooldown_ms),
            str(found.daily_cap),
            f"{found.control_share:.0%}",
            escape(describe_triggers(found.triggers)),
            escape(Path(found.source).name),
        )
    return table


def campaign_lines(found: Campaign) -> str:
    """One campaign as a few short lines, for a console too narrow for the table."""
    valid = f"{found.valid_from or '-'} .. {found.valid_until or '-'}"
    triggers = "; ".join(describe_trigger(t) for t in found.triggers)
    return (
        f"[bold]{found.id}[/bold] v{found.version} priority {found.priority} {found.channel} "
        f"valid {valid}\n"
        f"  delay {format_duration(found.send_delay_ms)}, "
        f"cooldown {format_duration(found.cooldown_ms)}, daily cap {found.daily_cap}, "
        f"control share {found.control_share:.0%}\n"
        f"  triggers: {escape(triggers)}\n"
        f"  file: {escape(Path(found.source).name)}"
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _print_report(report: CheckReport, directory: Path, strict: bool) -> None:
    out = Console()
    if report.campaigns and out.width >= WIDE:
        out.print(campaigns_table(report.campaigns, directory))
    elif report.campaigns:
        out.print(f"[bold]campaigns in {escape(str(directory))}[/bold]")
        for found in report.campaigns:
            out.print(campaign_lines(found))
    for problem in report.problems:
        style = _STYLE[problem.severity]
        out.print(
            f"[{style}]{problem.severity}:[/{style}] {escape(problem.message)}", soft_wrap=True
        )
    errors, warnings = len(report.errors), len(report.warnings)
    failed = errors or (strict and warnings)
    verdict = "[red]FAILED[/red]" if failed else "[green]OK[/green]"
    out.print(
        f"{verdict}: {_count(len(report.campaigns), 'campaign')}, {_count(errors, 'error')}, "
        f"{_count(warnings, 'warning')}",
        soft_wrap=True,
    )


@campaigns_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="The campaigns folder (*.py files).")],
    strict: Annotated[bool, typer.Option(help="Fail on warnings too.")] = False,
    timezone: Annotated[
        str | None,
        typer.Option(help="The bank's time zone for validity dates (default: the settings')."),
    ] = None,
) -> None:
    """Import and validate every campaign file, print the campaigns and every problem.

    Exits 1 on any error (or, with --strict, any warning), 0 otherwise.
    """
    report = check_dir(directory, _today(timezone).date())
    _print_report(report, directory, strict)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)
