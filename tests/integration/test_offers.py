"""Offers through the real Kafka, Redis, S3 and Trino: simulated traffic with ATM declines, rejected
standing orders and abandoned loan applications, real customer profiles in the store, and a
SIGKILL and resume mid-stream. The offers on the topic must be exactly the ones computed
independently from the input; nobody without consent gets one; the archive's offers table holds
every decision once, and the uplift report gives the figures computed from the input."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from flows.runner import prepare_topics
from flows.trino_sql import run
from offers.archive import OfferRow
from sinks.parquet_archive import ArchiveWriter
from sources.customer_sample import sample_rows
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.contract import Event
from state.records import ArchiveObject, Arrival
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.events import BASE as EVENTS_BASE
from tests.support.events import event_json
from tests.support.job import crash_midway, run_job, with_offers
from tests.support.offers_reference import Outcome, expected_offers
from tests.support.readback import archive_rows, redis_dump, topic_values
from tests.support.reference import expected_from, parse_time
from tests.support.shipped_campaigns import SPECS


@dataclass(frozen=True)
class OffersRun:
    """The job run once over the shipped campaigns, with a crash, and the reference."""

    services: Services
    settings: Settings
    customers: dict[str, dict[str, str]]
    events: list[dict[str, Any]]
    """The valid unique input events."""
    expected: Outcome
    log: Path
    written_before_the_crash: int
    """Decisions in the offers table when the job was killed."""


@pytest.fixture(scope="module")
def offers_run(module_services: Services, tmp_path_factory: pytest.TempPathFactory) -> OffersRun:
    services = module_services
    tmp_path = tmp_path_factory.mktemp("offers")
    base = services.settings
    topic = base.events_topics[0]
    settings = with_offers(
        base, tmp_path / "campaigns", kafka_batch_size=500, offers_holdout_share=0.05
    )
    prepare_topics(settings, "kafka")  # events, dead letters, offers, decisions
    # 08:00-11:00 in Warsaw, a busy morning for 3,000 customers.
    config = SimulationConfig(
        customers=3000, rate=40.0, duration_s=3 * 3600, seed=515, duplicate_rate=0.01,
        malformed_rate=0.002, start=datetime(2026, 1, 15, 7, 0, tzinfo=UTC),
    )  # fmt: skip
    load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, config)
    customers = {row["customer_id"]: row for row in sample_rows(config)}

    messages = list(generate(config))
    cut = int(len(messages) * 0.4)
    recovery = tmp_path / "recovery"
    log = tmp_path / "job.log"
    crash_midway(services.redis, settings, messages[:cut], recovery, log)
    written_before_the_crash = len(archive_rows(services.s3, settings, "offers"))
    with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
        for message in messages[cut:]:
            writer.write(message)
    run_job(settings, "kafka", recovery)

    events = list(expected_from([m.value for m in messages]).valid_unique.values())
    expected = expected_offers(
        events, customers, SPECS, holdout_share=0.05, global_daily_cap=3, timezone="Europe/Warsaw"
    )
    return OffersRun(services, settings, customers, events, expected, log, written_before_the_crash)


def test_offers_are_exactly_the_expected_ones_across_a_crash(offers_run: OffersRun) -> None:
    services, settings, expected = offers_run.services, offers_run.settings, offers_run.expected
    customers, log = offers_run.customers, offers_run.log
    # The run is big enough to exercise every rule.
    assert len(expected.sent) > 100, len(expected.sent)
    assert expected.held_out and expected.cancelled and expected.no_consent and expected.capped
    assert {c for c, _, _ in expected.sent.values()} != set()

    offers = [msgspec.json.decode(v) for v in topic_values(settings, settings.offers_topic)]
    ids = {o["offer_id"] for o in offers}
    twice = [i for i, n in Counter(o["offer_id"] for o in offers).items() if n > 1]
    assert not twice, f"{len(twice)} offers on the topic twice (the SMS would go twice)"
    missing = set(expected.sent) - ids
    unexpected = ids - set(expected.sent)
    assert not missing and not unexpected, (len(missing), len(unexpected), log.read_text()[-3000:])
    for offer in offers:
        customer = customers[offer["customer_id"]]
        assert customer["sms_consent"] == "true", offer
        assert (offer["customer_id"], offer["campaign_id"], offer["trigger_event_id"]) == (
            expected.sent[offer["offer_id"]]
        )
        assert offer["campaign_version"] == 1
        assert offer["phone"] == customer["phone"]
        assert customer["first_name"] in offer["text"]
        assert offer["send_at"] > offer["trigger_time"]

    # The audit trail: every final decision, once per offer id however often it was written.
    decisions = [
        msgspec.json.decode(v) for v in topic_values(settings, settings.offer_decisions_topic)
    ]
    final = {d["offer_id"]: d for d in decisions if d["stage"] == "release"}
    assert {o for o, d in final.items() if d["outcome"] == "held_out"} == expected.held_out
    assert {o for o, d in final.items() if d.get("reason") == "cancelled"} == expected.cancelled
    matches = {d["offer_id"]: d for d in decisions if d["stage"] == "match"}
    assert {o for o, d in matches.items() if d.get("reason") == "no_consent"} == expected.no_consent
    capped = {o for o, d in matches.items() if d.get("reason") in ("cooldown", "frequency_cap")}
    assert capped == expected.capped

    # Redis: offers sent per campaign for the day, exact despite the replay.
    dump = redis_dump(services.redis, settings.redis_prefix)
    sent_today = dump[f"{settings.redis_prefix}:offers:2026-01-15:sent"]
    assert {k: int(v) for k, v in sent_today.items()} == dict(
        Counter(campaign for _, campaign, _ in expected.sent.values())
    )


def _utc(text: str) -> datetime:
    moment = parse_time(text)
    assert moment is not None, text
    return moment


DECISION_FIELDS = ("offer_id", "stage", "outcome", "campaign_id", "campaign_version",
                   "customer_id", "trigger_event_id", "latency_ms", "reason", "detail")  # fmt: skip
# One object per offers shard and trigger hour (a release after its hour left the state: its own).
OBJECT_NAME = re.compile(r".*/offers-\d{2}(-late-[0-9a-f]{24}-release)?\.parquet")


def test_the_archive_holds_every_decision_once_across_the_crash(offers_run: OffersRun) -> None:
    settings, expected = offers_run.settings, offers_run.expected
    customers = offers_run.customers
    rows = archive_rows(offers_run.services.s3, settings, "offers")
    assert offers_run.written_before_the_crash > 0
    # Once each, although the crash made the job decide (and write) part of them twice.
    repeated = [i for i, n in Counter(r["decision_id"] for r in rows).items() if n > 1]
    assert not repeated, repeated[:5]
    # Every decision on the topic, as it was last written there.
    on_topic: dict[str, dict[str, Any]] = {}
    for value in topic_values(settings, settings.offer_decisions_topic):
        decision = msgspec.json.decode(value)
        on_topic[decision["decision_id"]] = decision
    assert {r["decision_id"] for r in rows} == set(on_topic)
    offers = {
        o["offer_id"]: o
        for o in map(msgspec.json.decode, topic_values(settings, settings.offers_topic))
    }
    for row in rows:
        decision = on_topic[row["decision_id"]]
        for field in DECISION_FIELDS:
            assert row[field] == decision.get(field), (field, row, decision)
        for field in ("trigger_time", "decided_at", "send_at"):
            text = decision.get(field)
            assert row[field] == (None if text is None else _utc(text)), (field, row, decision)
        # In the hour partition of the trigger's event time (UTC).
        assert (row["_dt"], row["_hour"]) == (
            row["trigger_time"].strftime("%Y-%m-%d"), row["trigger_time"].strftime("%H"),
        )  # fmt: skip
        assert OBJECT_NAME.fullmatch(row["_object"]), row["_object"]
        sent = row["stage"] == "release" and row["outcome"] == "sent"
        offer = offers.get(row["offer_id"]) if sent else None
        assert (row["channel"], row["template"]) == (
            (offer["channel"], offer["template"]) if offer is not None else (None, None)
        )
        if offer is not None:
            # What was sent, without the personal data the sent text holds.
            non_personal = {k: v for k, v in offer["params"].items() if k != "first_name"}
            assert json.loads(row["params"]) == non_personal
            first_name = customers[row["customer_id"]]["first_name"]
            assert all(first_name not in str(value) for value in row.values()), row
        else:
            assert row["params"] is None
    # One object per trigger hour for every offers shard together (one table part).
    by_hour = Counter((r["_dt"], r["_hour"], r["_object"]) for r in rows)
    assert len({(dt, hour) for dt, hour, _ in by_hour}) == len(by_hour), by_hour
    # The final word on each offer, as the reference has it.
    releases = {r["offer_id"]: r for r in rows if r["stage"] == "release"}
    assert {o for o, r in releases.items() if r["outcome"] == "sent"} == set(expected.sent)
    assert {o for o, r in releases.items() if r["outcome"] == "held_out"} == expected.held_out
    assert {o for o, r in releases.items() if r["reason"] == "cancelled"} == expected.cancelled
    pending = {r["offer_id"] for r in rows if r["stage"] == "match" and r["outcome"] == "pending"}
    assert pending == set(releases)
    for offer, released in expected.released.items():
        assert releases[offer]["send_at"] == released.send_at, offer


UPLIFT_WINDOW = timedelta(days=7)


def test_offer_uplift_on_trino_matches_the_input(offers_run: OffersRun) -> None:
    settings, expected = offers_run.settings, offers_run.expected
    schema = f"it_{offers_run.services.run_id}"
    run(settings, "ddl", schema)
    run(settings, "sync", schema)
    _, rows = run(settings, "reports/offer_uplift", schema)

    # Treatment: customers sent the campaign's offer; control: customers held out of it. A
    # customer converted with a conversion event in [send_at, send_at + 7 days) of an offer.
    conversions: dict[str, list[datetime]] = {}
    for event in offers_run.events:
        if event["event_type"] == "conversion" and event.get("customer_id"):
            conversions.setdefault(event["customer_id"], []).append(_utc(event["event_time"]))
    groups: dict[tuple[str, str], dict[str, bool]] = {}
    for released in expected.released.values():
        converted = any(
            released.send_at <= at < released.send_at + UPLIFT_WINDOW
            for at in conversions.get(released.customer, [])
        )
        members = groups.setdefault((released.campaign, released.outcome), {})
        members[released.customer] = members.get(released.customer, False) or converted

    def rate(converted: int, n: int) -> float | None:
        return converted / n if n else None

    campaigns = sorted({campaign for campaign, _ in groups})
    assert [row[0] for row in rows] == campaigns
    for campaign, treated, t_conv, t_rate, control, c_conv, c_rate, uplift in rows:
        sent = groups.get((campaign, "sent"), {})
        held = groups.get((campaign, "held_out"), {})
        assert (treated, t_conv) == (len(sent), sum(sent.values())), campaign
        assert (control, c_conv) == (len(held), sum(held.values())), campaign
        t_expected, c_expected = rate(t_conv, treated), rate(c_conv, control)
        assert t_rate == (None if t_expected is None else round(t_expected, 6))
        assert c_rate == (None if c_expected is None else round(c_expected, 6))
        if t_expected is None or c_expected is None:
            assert uplift is None
        else:
            assert uplift == pytest.approx(t_expected - c_expected, abs=1e-6)
    # Both groups are there, and conversions after a send are counted.
    assert all(row[1] and row[4] for row in rows), rows
    assert sum(row[2] + row[5] for row in rows) > 0, rows


def _event(event_id: str, customer: str | None, at: datetime, kind: str = "conversion") -> Arrival:
    event = msgspec.json.decode(
        event_json(event_id, (at - EVENTS_BASE).total_seconds(), kind, customer, "D9"), type=Event
    )
    return Arrival(event, int(at.timestamp() * 1000), "bank.events", 0, 0, 0)


def _release(customer: str, outcome: str, send_at: datetime, trigger: str = "t1") -> OfferRow:
    at = int(send_at.timestamp() * 1000)
    offer = f"{customer}-{trigger}"
    return OfferRow(
        f"{offer}:release", offer, "release", outcome, None, None, "c1", 1, customer, trigger,
        at - 45_000, at, at, None,
    )  # fmt: skip


def test_offer_uplift_counts_conversions_from_the_send_to_seven_days_after(
    services: Services,
) -> None:
    settings = services.settings
    send = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    week = timedelta(days=7)
    ms = timedelta(milliseconds=1)
    offers = [
        _release("A", "sent", send),  # converts on the window's last millisecond
        _release("B", "sent", send),  # converts just after the window
        _release("E", "sent", send),  # not within the first offer's window, but the second's
        _release("E", "sent", send + timedelta(days=10), "t2"),
        _release("C", "held_out", send),  # converted just before the send: not counted
        _release("D", "held_out", send),  # converts at the send
        _release("F", "suppressed", send),  # neither group
    ]
    events = [
        _event("a", "A", send + week - ms),
        _event("b", "B", send + week),
        _event("b2", "B", send + timedelta(hours=1), "click"),
        _event("e", "E", send + timedelta(days=10, hours=1)),
        _event("c", "C", send - ms),
        _event("d", "D", send),
        _event("f", "F", send + timedelta(hours=1)),
        _event("anonymous", None, send + timedelta(hours=1)),
    ]
    writer = ArchiveWriter(settings.s3_bucket, settings.s3_prefix, settings.storage_options())
    writer.write(ArchiveObject("offers", "2026-01-15", "08", "offers-0001", list(offers)))
    writer.write(ArchiveObject("events", "2026-01-15", "09", "hand-made", events))
    schema = f"it_{services.run_id}"
    run(settings, "ddl", schema)
    run(settings, "sync", schema)
    columns, rows = run(settings, "reports/offer_uplift", schema)
    assert columns == ["campaign_id", "treated", "treated_converted", "treated_rate", "control",
                       "control_converted", "control_rate", "uplift"]  # fmt: skip
    assert rows == [("c1", 3, 2, 0.666667, 2, 1, 0.5, 0.166667)]
