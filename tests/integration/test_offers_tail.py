"""The offers subscriber (`clickstream offers tail`) against the real Kafka.

The job writes an offer at least once; a subscriber must hand out one SMS per offer id, report
what is not an offer and go on, and, when restarted, go on after what it has handled.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import msgspec
from confluent_kafka import Producer
from typer.testing import CliRunner

from flows.cli import app
from offers.gateway import BadOffer, OfferGateway, ReceivedOffer, TailStats
from offers.records import OfferMessage, iso_ms, offer_id
from sources.kafka import ensure_topics
from tests.conftest import Services

IDLE_S = 3.0
MALFORMED = b'{"offer_id": "broken", "text": "not a whole offer'


def an_offer(customer: str, event_id: str, send_at: datetime | None = None) -> OfferMessage:
    campaign = "atm-decline-personal-loan"
    due = send_at or datetime(2026, 11, 25, 8, 0, 45, tzinfo=UTC)
    return OfferMessage(
        offer_id=offer_id(customer, campaign, event_id),
        campaign_id=campaign,
        campaign_version=1,
        customer_id=customer,
        channel="sms",
        phone="+48500100200",
        template="{first_name}, a loan of up to {limit} PLN",
        params={"limit": 10000},
        text=f"{customer}, a loan of up to 10000 PLN",
        trigger_event_id=event_id,
        trigger_time="2026-11-25T08:00:00.000Z",
        decided_at="2026-11-25T08:00:00.040Z",
        send_at=iso_ms(int(due.timestamp() * 1000)),
    )


def offers_topic(services: Services, partitions: int = 3) -> str:
    topic = f"it-{services.run_id}.offers"
    ensure_topics(services.settings.kafka_config(), [topic], partitions)
    return topic


def produce(services: Services, topic: str, messages: list[tuple[str, bytes]]) -> None:
    """Messages keyed by customer id, as the job writes them (one customer, one partition)."""
    producer = Producer({"bootstrap.servers": services.settings.kafka_bootstrap_servers})
    for key, value in messages:
        producer.produce(topic, value, key.encode())
    assert producer.flush(30) == 0


def encoded(offer: OfferMessage) -> tuple[str, bytes]:
    return offer.customer_id, msgspec.json.encode(offer)


class Gateway:
    """Runs an :class:`OfferGateway` to a stop and keeps what it handed out."""

    def __init__(self) -> None:
        self.offers: list[ReceivedOffer] = []
        self.bad: list[BadOffer] = []
        self.duplicates: list[ReceivedOffer] = []
        self.handed_at: dict[str, float] = {}

    def on_offer(self, received: ReceivedOffer) -> None:
        self.offers.append(received)
        self.handed_at[received.offer.offer_id] = time.time()

    def run(
        self,
        services: Services,
        topic: str,
        group: str,
        *,
        from_beginning: bool = False,
        max_offers: int | None = None,
        honour_send_at: bool = False,
    ) -> tuple[TailStats, list[str]]:
        kafka = services.settings.kafka_config()
        with OfferGateway(kafka, topic, group, from_beginning=from_beginning) as gateway:
            stats = gateway.tail(
                self.on_offer,
                on_bad=self.bad.append,
                on_duplicate=self.duplicates.append,
                max_offers=max_offers,
                idle_timeout_s=IDLE_S,
                honour_send_at=honour_send_at,
            )
        return stats, [r.offer.offer_id for r in self.offers]


def test_each_offer_id_is_handed_out_once_and_a_malformed_message_is_reported(
    services: Services,
) -> None:
    topic = offers_topic(services)
    first = [an_offer(f"C{n}", f"e-{n}") for n in range(1, 7)]
    # A replay of the job writes an offer again with the same id (and the same key).
    replayed = [first[0], first[3]]
    produce(
        services,
        topic,
        [encoded(o) for o in first] + [("C2", MALFORMED)] + [encoded(o) for o in replayed],
    )

    gateway = Gateway()
    stats, handed = gateway.run(services, topic, f"it-{services.run_id}", from_beginning=True)

    assert sorted(handed) == sorted(o.offer_id for o in first)
    assert [r.offer for r in gateway.offers if r.offer.offer_id == first[0].offer_id] == [first[0]]
    assert sorted(r.offer.offer_id for r in gateway.duplicates) == sorted(
        o.offer_id for o in replayed
    )
    assert [(b.value, b.key) for b in gateway.bad] == [(MALFORMED, b"C2")]
    assert gateway.bad[0].reason.startswith("not JSON")
    assert (stats.offers, stats.duplicates, stats.bad, stats.stopped) == (6, 2, 1, "idle")


def test_a_restarted_subscriber_goes_on_after_what_it_handled(services: Services) -> None:
    topic = offers_topic(services)
    group = f"it-{services.run_id}"
    before = [an_offer(f"C{n}", f"e-{n}") for n in range(1, 5)]
    produce(services, topic, [encoded(o) for o in before])
    _, first_run = Gateway().run(services, topic, group, from_beginning=True)
    assert sorted(first_run) == sorted(o.offer_id for o in before)

    after = [an_offer(f"C{n}", f"e-after-{n}") for n in range(1, 4)]
    produce(services, topic, [encoded(o) for o in after])
    _, second_run = Gateway().run(services, topic, group)
    assert sorted(second_run) == sorted(o.offer_id for o in after)


def test_stopping_at_max_leaves_the_unhandled_offers_for_the_next_run(services: Services) -> None:
    topic = offers_topic(services, partitions=1)
    group = f"it-{services.run_id}"
    offers = [an_offer("C1", f"e-{n}") for n in range(1, 6)]
    produce(services, topic, [encoded(o) for o in offers])

    stats, first_run = Gateway().run(services, topic, group, from_beginning=True, max_offers=2)
    assert stats.stopped == "max"
    assert first_run == [o.offer_id for o in offers[:2]]

    _, second_run = Gateway().run(services, topic, group)
    assert second_run == [o.offer_id for o in offers[2:]]


def test_with_honour_send_at_an_offer_is_not_handed_out_before_its_send_time(
    services: Services,
) -> None:
    topic = offers_topic(services, partitions=1)
    due = datetime.now(UTC) + timedelta(seconds=6)
    late, now = an_offer("C1", "e-later", send_at=due), an_offer("C2", "e-now")
    produce(services, topic, [encoded(late), encoded(now)])

    gateway = Gateway()
    _, handed = gateway.run(
        services, topic, f"it-{services.run_id}", from_beginning=True, honour_send_at=True
    )
    assert handed == [late.offer_id, now.offer_id]
    # send_at has millisecond precision.
    assert gateway.handed_at[late.offer_id] >= due.timestamp() - 0.001


def test_the_cli_prints_each_offer_once_and_warns_about_the_malformed_message(
    services: Services,
) -> None:
    topic = offers_topic(services)
    offers = [an_offer(f"C{n}", f"e-{n}") for n in range(1, 5)]
    produce(
        services,
        topic,
        [encoded(o) for o in offers] + [("C3", MALFORMED), encoded(offers[2])],
    )
    args = ["offers", "tail", "--topic", topic, "--group", f"it-{services.run_id}"]
    env = {"CLICKSTREAM_KAFKA_BOOTSTRAP_SERVERS": services.settings.kafka_bootstrap_servers}

    result = CliRunner().invoke(
        app, [*args, "--from-beginning", "--json", "--timeout", "3"], env=env
    )
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(p["offer_id"] for p in printed) == sorted(o.offer_id for o in offers)
    assert {p["offer_id"]: p for p in printed}[offers[0].offer_id] == msgspec.to_builtins(offers[0])
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert f"not an offer at {topic}[" in warnings[0] and "not JSON" in warnings[0]
    assert f"duplicate offer {offers[2].offer_id}" in result.stderr
    assert "4 offers, 1 duplicates skipped, 1 bad messages (idle)" in result.stderr

    # Offsets were committed: the same group prints nothing again (one SMS per offer).
    produce(services, topic, [encoded(an_offer("C9", "e-9"))])
    again = CliRunner().invoke(
        app, [*args, "--max", "1", "--timeout", "10"], env={**env, "COLUMNS": "300"}
    )
    assert again.exit_code == 0, again.output
    line = again.stdout.strip()
    assert line == "2026-11-25T08:00:45.000Z C9 atm-decline-personal-loan@1 sms " + (
        "C9, a loan of up to 10000 PLN"
    )
