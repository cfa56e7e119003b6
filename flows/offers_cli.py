"""``clickstream offers``: the reference subscriber of the offers topic."""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.markup import escape

from offers.gateway import DEFAULT_REMEMBER, BadOffer, OfferGateway, ReceivedOffer

offers_app = typer.Typer(help="The offers topic, as an SMS gateway reads it.")


def _offer_line(received: ReceivedOffer) -> str:
    offer = received.offer
    return (
        f"[bold]{escape(offer.send_at)}[/bold] {escape(offer.customer_id)} "
        f"[cyan]{escape(offer.campaign_id)}@{offer.campaign_version}[/cyan] "
        f"{escape(offer.channel)} {escape(offer.text)}"
    )


@offers_app.command("tail")
def tail(
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning",
            help="Read every offer on the topic, not only those after the group's offsets.",
        ),
    ] = False,
    max_offers: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many unique offers.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="Stop after this many seconds without a message."),
    ] = None,
    group: Annotated[
        str,
        typer.Option(help="Consumer group: a new run goes on from the group's committed offsets."),
    ] = "clickstream-offers-tail",
    topic: Annotated[
        str | None, typer.Option(help="The offers topic (default: CLICKSTREAM_OFFERS_TOPIC).")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print each offer as it is on the topic, one a line.")
    ] = False,
    honour_send_at: Annotated[
        bool, typer.Option("--honour-send-at", help="Wait until an offer's send_at to print it.")
    ] = False,
    remember: Annotated[
        int, typer.Option(min=1, help="Offer ids remembered for the dedupe.")
    ] = DEFAULT_REMEMBER,
) -> None:
    """Print each offer once (deduped by offer_id), committing offsets after printing.

    Messages that are not offers are reported on stderr and skipped.
    """
    from state.settings import SettingsError, load_settings

    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    topic = topic or settings.offers_topic
    encode = msgspec.json.Encoder().encode

    def print_offer(received: ReceivedOffer) -> None:
        if json_lines:
            sys.stdout.write(encode(received.offer).decode() + "\n")
            sys.stdout.flush()
        else:
            out.print(_offer_line(received), highlight=False)

    def warn_bad(bad: BadOffer) -> None:
        err.print(
            f"[yellow]warning:[/yellow] skipped a message that is not an offer at "
            f"{escape(bad.topic)}[{bad.partition}]@{bad.offset}: {escape(bad.reason)}",
            highlight=False,
        )

    def note_duplicate(received: ReceivedOffer) -> None:
        err.print(
            f"[dim]duplicate offer {received.offer.offer_id} at {escape(received.topic)}"
            f"[{received.partition}]@{received.offset}: already sent, skipped[/dim]",
            highlight=False,
        )

    err.print(f"reading offers from {escape(topic)} as group {escape(group)}", highlight=False)
    with OfferGateway(
        settings.kafka_config(),
        topic,
        group,
        from_beginning=from_beginning,
        remember=remember,
    ) as gateway:
        try:
            stats = gateway.tail(
                print_offer,
                on_bad=warn_bad,
                on_duplicate=note_duplicate,
                max_offers=max_offers,
                idle_timeout_s=timeout,
                honour_send_at=honour_send_at,
            )
        except KeyboardInterrupt:
            err.print("stopped")
            return
    err.print(
        f"{stats.offers} offers, {stats.duplicates} duplicates skipped, "
        f"{stats.bad} bad messages ({stats.stopped})",
        highlight=False,
    )
