"""``clickstream campaigns``: check a campaigns folder before the job picks it up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from offers.api import Campaign
from offers.check import (
    CheckReport,
    check_dir,
    describe_trigger,
    describe_triggers,
    format_duration,
)

if TYPE_CHECKING:
    from flows.backtest import BacktestReport, CampaignOutcomes
    from offers.engine import ProfileLookup
    from state.settings import Settings

campaigns_app = typer.Typer(
    help="Campaign files: check them, and backtest them on the archive, before the job runs them."
)
_STYLE = {"error": "red", "warning": "yellow", "note": "cyan"}
WIDE = 140
"""Console columns from which the campaigns are shown as a table."""


def _settings() -> Settings:
    from state.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        Console(stderr=True).print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


def _today(timezone: str | None) -> datetime:
    if timezone is None:
        timezone = _settings().bank_timezone
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
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


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


def _store_profiles(settings: Settings) -> ProfileLookup:
    """The customer store in Redis, refusing a store with no extract loaded."""
    import redis

    from sinks.redis_projection import redis_client
    from state.customer_store import CustomerProfiles, current_key
    from state.outage import redact

    client = redis_client(settings.redis_url, settings.redis_options())
    try:
        loaded = client.get(current_key(settings.redis_prefix))
    except redis.RedisError as exc:
        _fail(f"cannot read the customer store at {redact(settings.redis_url)}: {exc}")
    if loaded is None:
        _fail(
            f"the customer store (Redis {redact(settings.redis_url)}, prefix "
            f"{settings.redis_prefix}) has no extract loaded: every customer would be unknown, "
            "without consent. Load one with `clickstream customers load FILE`, or give it here "
            "with --customers FILE."
        )
    reader = CustomerProfiles(client, settings.redis_prefix, settings.customer_cache_size)
    return reader.get_many


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


_REASON_COLUMNS = (
    ("no_consent", "no\nconsent"),
    ("cooldown", "cool-\ndown"),
    ("frequency_cap", "freq.\ncap"),
    ("daily_cap", "daily\ncap"),
    ("lower_priority", "lower\nprio."),
    ("cancelled", "can-\ncelled"),
    ("expired", "ex-\npired"),
)


def _outcome_cells(outcomes: CampaignOutcomes) -> list[str]:
    return [
        f"{outcomes.matched:,}",
        f"{outcomes.sent:,}",
        f"{outcomes.held_out.get('control_group', 0):,}",
        f"{outcomes.held_out.get('global_holdout', 0):,}",
        *(f"{outcomes.suppressed.get(reason, 0):,}" for reason, _ in _REASON_COLUMNS),
        f"{outcomes.rule_errors:,}",
    ]


def backtest_table(report: BacktestReport) -> Table:
    """One row per campaign (highest priority first), then the totals."""
    table = Table(
        title=f"backtest of {escape(report.campaigns_dir)}: {report.first_day} .. "
        f"{report.last_day}",
        caption="held out (control group, global holdout): would have been sent; "
        "no consent .. expired: suppressed, by reason",
    )
    table.add_column("campaign", no_wrap=True, style="bold")
    headers = ("matched", "sent", "control", "hold-\nout", *(h for _, h in _REASON_COLUMNS),
               "rule\nerrors")  # fmt: skip
    for header in headers:
        table.add_column(
            header,
            justify="right",
            no_wrap=True,
            min_width=max(len(word) for word in header.split("\n")),
            style="green" if header == "sent" else None,
        )
    for outcomes in report.campaigns:
        table.add_row(escape(outcomes.campaign_id), *_outcome_cells(outcomes))
    table.add_section()
    table.add_row("total", *_outcome_cells(report.totals), style="bold")
    return table


def outcome_lines(outcomes: CampaignOutcomes) -> str:
    """One campaign's outcomes as a line or two, for a console too narrow for the table."""
    held = {k: n for k, n in outcomes.held_out.items() if n}
    suppressed = {k: n for k, n in outcomes.suppressed.items() if n}
    parts = [f"{outcomes.matched:,} matched", f"[green]{outcomes.sent:,} sent[/green]"]
    if held:
        detail = ", ".join(f"{k} {n:,}" for k, n in held.items())
        parts.append(f"{sum(held.values()):,} held out ({detail})")
    if suppressed:
        detail = ", ".join(f"{k} {n:,}" for k, n in suppressed.items())
        parts.append(f"{sum(suppressed.values()):,} suppressed ({detail})")
    if outcomes.rule_errors:
        parts.append(f"[red]{_count(outcomes.rule_errors, 'rule error')}[/red]")
    return f"[bold]{escape(outcomes.campaign_id)}[/bold]: " + ", ".join(parts)


def _print_backtest(report: BacktestReport) -> None:
    out = Console()
    table = backtest_table(report)
    if table.__rich_measure__(out, out.options).minimum <= out.width:
        out.print(table)
    else:
        out.print(
            f"[bold]backtest of {escape(report.campaigns_dir)}: {report.first_day} .. "
            f"{report.last_day}[/bold]"
        )
        for outcomes in [*report.campaigns, report.totals]:
            out.print(outcome_lines(outcomes), soft_wrap=True)
    for outcomes in report.campaigns:
        for example in outcomes.rule_error_examples:
            out.print(
                f"[red]rule error:[/red] {escape(outcomes.campaign_id)}: {escape(example)}",
                soft_wrap=True,
            )
        if outcomes.quiet_hours:
            out.print(
                f"note: {escape(outcomes.campaign_id)}: "
                f"{_count(outcomes.quiet_hours, 'offer')} held until the quiet hours ended",
                soft_wrap=True,
            )
    out.print(
        f"{escape(report.archive)}: {_count(report.rows, 'event')} in "
        f"{_count(report.files, 'object')} ({_count(report.hours, 'hour')}, "
        f"{report.first_event} .. {report.last_event}); {report.customer_events:,} of known "
        f"customers, {report.without_customer:,} without a customer id, "
        f"{_count(report.duplicates, 'repeated event id')} skipped",
        soft_wrap=True,
    )


@campaigns_app.command("backtest")
def backtest(
    directory: Annotated[Path, typer.Argument(help="The campaigns folder (*.py files).")],
    archive: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The archive: s3://bucket/prefix or a local folder with the same layout "
            "(events/dt=YYYY-MM-DD/hour=HH/*.parquet). Default: the job's archive.",
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="How many days (UTC dt partitions) back from the newest in the archive, or from "
            "--until. Default 7 when --since is not given.",
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First day, instead of --days."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day (default: the newest in the archive)."),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(
            help="A customer extract (CSV or Parquet, as for `clickstream customers load`) "
            "instead of the customer store in Redis."
        ),
    ] = None,
    ignore_dates: Annotated[
        bool,
        typer.Option(
            "--ignore-dates",
            help="Run every campaign on every day, whatever its valid_from and valid_until "
            "(to try a campaign before it starts).",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object.")
    ] = False,
) -> None:
    """Run the campaigns over archived events: what each would have sent, after caps and consent.

    The engine is the job's, with its settings (caps, quiet hours, holdout, time zone), except
    that old triggers are not expired. Exits 1 when the folder has campaign errors or the archive
    has no events in the range.
    """
    import msgspec

    from flows.backtest import BacktestError, ExtractProfiles, backtest_archive, load_campaigns
    from flows.offers_step import offers_config
    from flows.runner import tune_gc
    from sources.archive import ArchiveError, EventArchive, day_range

    settings = _settings()
    err = Console(stderr=True)
    location = archive or f"s3://{settings.s3_bucket}/{settings.s3_prefix.strip('/')}"
    try:
        campaigns = load_campaigns(
            directory, _today(settings.bank_timezone).date(), ignore_dates=ignore_dates
        )
        if customers is not None:
            extract = ExtractProfiles(customers)
            for problem in extract.bad_rows[:20]:
                err.print(f"[yellow]{escape(str(customers))}: {escape(problem)}[/yellow]")
            if len(extract.bad_rows) > 20:
                err.print(f"[yellow]... and {len(extract.bad_rows) - 20:,} more bad rows[/yellow]")
            profiles: ProfileLookup = extract
        else:
            profiles = _store_profiles(settings)
        events = EventArchive(location, settings.storage_options())
        first, last = day_range(
            events.days(),
            days=days,
            since=None if since is None else since.date(),
            until=None if until is None else until.date(),
        )
        hours = events.hours(first, last)
        # As in the job: the engine's state is many small long-lived objects, and a collection
        # pass in the middle of a rule would cut it off as too slow.
        tune_gc()
        columns = (
            TextColumn("[bold]reading[/bold] {task.fields[where]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("objects, {task.fields[rows]:,} events"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=json_output) as progress:
            task = progress.add_task(
                "read",
                total=sum(len(h.files) for h in hours),
                where=escape(events.table_location),
                rows=0,
            )

            read = [0]

            def on_file(rows: int) -> None:
                read[0] += rows
                progress.update(task, advance=1, rows=read[0])

            report = backtest_archive(
                campaigns,
                events,
                (first, last),
                profiles,
                offers_config(settings),
                campaigns_dir=directory,
                hours=hours,
                on_file=on_file,
            )
    except (BacktestError, ArchiveError) as exc:
        _fail(str(exc))
    if json_output:
        print(msgspec.json.encode(report).decode())
    else:
        _print_backtest(report)
