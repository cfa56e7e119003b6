"""``clickstream simulate``: realistic bank traffic into Kafka or a JSON-lines file.

:func:`simulate` is a plain function with typer-annotated parameters; the ``clickstream`` command
line registers it as a command.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sources.simulator import DEFAULT_START, SimulationConfig, generate
from sources.simulator_output import (
    DeliveryError,
    EmissionSummary,
    JsonLinesWriter,
    KafkaWriter,
    MessageWriter,
    emit,
)
from state.settings import SettingsError, load_settings


def simulate(
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Number of customers (C0000001 upwards).")
    ] = 1000,
    rate: Annotated[
        float,
        typer.Option("--rate", help="Valid events per simulated second, all customers together."),
    ] = 1000.0,
    duration: Annotated[
        float, typer.Option("--duration", min=0, help="Simulated seconds to generate.")
    ] = 60.0,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="'kafka', or 'file:PATH' for JSON lines (gzip when PATH ends with .gz).",
        ),
    ] = "kafka",
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic", help="Kafka topic; default: the first of CLICKSTREAM_EVENTS_TOPICS."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and options, same bytes.")] = 42,
    start: Annotated[
        str,
        typer.Option(
            "--start",
            help="Simulated time of the first event, ISO 8601 (UTC when no offset), or 'now'.",
        ),
    ] = "2026-01-15T08:00:00Z",
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime/--no-realtime",
            help="Write RATE events per wall-clock second instead of as fast as possible.",
        ),
    ] = False,
    duplicate_rate: Annotated[
        float,
        typer.Option(
            "--duplicate-rate",
            min=0.0,
            max=1.0,
            help="Share of events sent twice, byte for byte, a few hundred messages apart.",
        ),
    ] = 0.0,
    late_rate: Annotated[
        float,
        typer.Option(
            "--late-rate", min=0.0, max=1.0, help="Share of events sent after newer ones."
        ),
    ] = 0.0,
    late_max_s: Annotated[
        float,
        typer.Option(
            "--late-max-s", help="Most simulated seconds a late event trails the newest one."
        ),
    ] = 120.0,
    malformed_rate: Annotated[
        float,
        typer.Option(
            "--malformed-rate",
            min=0.0,
            max=1.0,
            help="Malformed messages per event, sent in addition to the events.",
        ),
    ] = 0.0,
    daily_curve: Annotated[
        bool,
        typer.Option(
            "--daily-curve/--even",
            help="Spread the events over the day as a bank's traffic is (quiet night, busy "
            "evening), --rate being the day's average; or evenly.",
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
) -> None:
    """Simulate the bank's customers: app journeys, ATM, card and transfer events, and noise."""
    try:
        config = SimulationConfig(
            customers=customers,
            rate=rate,
            duration_s=duration,
            seed=seed,
            start=_parse_start(start),
            duplicate_rate=duplicate_rate,
            late_rate=late_rate,
            late_max_s=late_max_s,
            malformed_rate=malformed_rate,
            daily_curve=daily_curve,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console()
    # A supervisor stops an endless real-time run with SIGTERM: end it like Ctrl-C, so that what
    # was produced is still delivered and the summary printed.
    previous_handler = signal.signal(signal.SIGTERM, _stop)
    began = time.monotonic()
    try:
        writer, where = _open_writer(to, topic)
        with writer:
            summary = emit(
                generate(config),
                writer,
                expected_events=config.event_count,
                realtime_rate=config.rate if realtime else None,
                progress=progress,
            )
    except (DeliveryError, OSError, SettingsError) as exc:
        console.print(f"[red]simulate failed:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    console.print(_summary_line(config, summary, where, time.monotonic() - began))


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parse_start(text: str) -> datetime:
    if text.strip().lower() == "now":
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. {DEFAULT_START:%Y-%m-%dT%H:%M:%SZ}) or 'now'",
            param_hint="--start",
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _open_writer(to: str, topic: str | None) -> tuple[MessageWriter, str]:
    """The writer for ``--to`` and a description of where it writes."""
    if to == "kafka":
        settings = load_settings()
        chosen = topic or settings.events_topics[0]
        return (
            KafkaWriter(settings.kafka_config(), chosen),
            f"Kafka topic {chosen!r} at {settings.kafka_bootstrap_servers}",
        )
    if to.startswith("file:") and len(to) > len("file:"):
        path = Path(to.removeprefix("file:"))
        return JsonLinesWriter(path), f"file {path}"
    raise typer.BadParameter(f"{to!r}: use 'kafka' or 'file:PATH'", param_hint="--to")


def _summary_line(
    config: SimulationConfig, summary: EmissionSummary, where: str, elapsed_s: float
) -> str:
    speed = summary.messages / elapsed_s if elapsed_s > 0 else 0.0
    stopped = (
        f"Stopped early after {summary.events:,} of {config.event_count:,} events.\n"
        if summary.interrupted
        else ""
    )
    return (
        f"{stopped}Simulated {summary.events:,} events ({summary.late:,} late) of "
        f"{config.customers:,} customers from {config.start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}, "
        f"plus {summary.duplicates:,} duplicates and {summary.malformed:,} malformed messages.\n"
        f"Wrote {summary.messages:,} messages to {where} in {elapsed_s:.1f} s "
        f"({speed:,.0f} messages/s)."
    )
