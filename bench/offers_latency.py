"""Event → offer latency through the real local Kafka, at a steady rate with 70 campaigns.

    python -m bench.offers_latency --rate 10000 --seconds 60 --campaigns 70

1. Loads a customer extract for the simulator's customers into the customer store and writes
   70 campaigns (the shipped ones plus generated ones on screens, clicks, forms and
   transactions, each looking at the customer's recent history) to a temporary folder.
2. Starts the job (`clickstream run --source kafka --tail`, recovery on) and feeds the events
   topic with simulated bank traffic at a steady rate, event times = the wall clock.
3. Meanwhile injects declined ATM withdrawals (the shipped campaign, 45 s delay) for customers
   with SMS consent, noting when each was produced, and reads the offers topic.

The latency of an offer is when it was readable on the offers topic minus when its trigger was
produced, minus the deliberate delay (send_at - trigger time). Traffic keeps flowing for the
delay after the last trigger, so offers are released by the stream, not by the quiet-input
fallback. Prints p50/p95/p99/max, and the decision latency (Kafka ingest → decision) from the
decisions topic.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import redis
import typer
from confluent_kafka import Consumer, Producer

from flows.runner import prepare_topics
from sources.customer_sample import sample_rows, write_sample_extract
from sources.simulator import SimulationConfig, generate
from state.customer_store import load_customers
from state.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
ATM_DELAY_S = 45.0
_CAMPAIGN = """
from offers import Event, History, Profile, Trigger, campaign


@campaign(
    id="bench-{n:02d}",
    version=1,
    priority={priority},
    send_delay="{delay}s",
    cooldown="7d",
    control_share=0.1,
    template="{{first_name}}: offer number {n}",
    triggers=[Trigger({trigger})],
)
def rule(event: Event, profile: Profile, history: History) -> bool:
    if profile.segment not in {segments!r} or "{product}" in profile.products:
        return False
    return {condition}
"""
# (trigger, condition): specific moments, as real campaigns are; most events match none.
_KINDS = (
    (
        '"transaction", properties={{"kind": "card_payment", "merchant_category": "{merchant}"}}',
        'float(event.properties.get("amount", 0)) > {amount}',
    ),
    (
        '"transaction", properties={{"kind": "card_payment", "status": "declined"}}',
        'history.count("transaction", within="24h", status="declined") >= {k}',
    ),
    (
        '"transaction", properties={{"kind": "transfer"}}',
        'float(event.properties.get("amount", 0)) > {amount} * 10',
    ),
    (
        '"click", element="offer_{offer}"',
        'history.count("screen_view", within="30m", screen="offers") >= {k}',
    ),
    ('"screen_view", screen="{screen}"', 'history.count("error", within="10m") >= {k}'),
    (
        '"form_start", form="{form}"',
        'history.count("form_start", within="1d", form="{form}") >= {k}',
    ),
)
_MERCHANTS = ("travel", "restaurant", "online", "fuel", "grocery", "other")
_OFFERS = ("credit_card", "savings_account", "travel_insurance", "overdraft")
_SCREENS = ("loan_application", "card_settings", "help", "cards", "transfer_confirm")
_FORMS = ("card_limit_form", "transfer_form", "loan_application_form")
_SEGMENTS = (("retail", "student"), ("premium", "private"), ("business",), ("retail",))
_PRODUCTS = ("credit_card", "savings", "mortgage", "investment", "insurance", "personal_loan")


def write_campaigns(folder: Path, count: int) -> None:
    """The shipped campaigns plus generated ones, ``count`` in all."""
    shipped = sorted((ROOT / "campaigns").glob("*.py"))
    for path in shipped:
        shutil.copy(path, folder / path.name)
    for n in range(max(0, count - len(shipped))):
        trigger, condition = _KINDS[n % len(_KINDS)]
        values = {
            "merchant": _MERCHANTS[n % len(_MERCHANTS)],
            "amount": 100 + 50 * (n % 7),
            "k": 1 + n % 3,
            "offer": _OFFERS[n % len(_OFFERS)],
            "screen": _SCREENS[n % len(_SCREENS)],
            "form": _FORMS[n % len(_FORMS)],
        }
        text = _CAMPAIGN.format(
            n=n,
            priority=n % 40,
            delay=5 + n % 30,
            trigger=trigger.format(**values),
            condition=condition.format(**values),
            segments=_SEGMENTS[n % len(_SEGMENTS)],
            product=_PRODUCTS[n % len(_PRODUCTS)],
        )
        (folder / f"bench_{n:02d}.py").write_text(text)


def _atm_decline(event_id: str, customer_id: str, now: float) -> bytes:
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return json.dumps(
        {
            "event_id": event_id,
            "event_time": stamp,
            "event_type": "transaction",
            "channel": "atm",
            "customer_id": customer_id,
            "app": "atm-network",
            "app_version": "3.4.1",
            "os": "atm-os",
            "os_version": "7.2",
            "properties": {
                "kind": "atm_withdrawal",
                "status": "declined",
                "reason": "insufficient_funds",
                "amount": 200,
                "currency": "PLN",
            },
        }
    ).encode()


class _Reader(threading.Thread):
    """Reads a topic from its start, noting when each message became readable."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True)
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"bench-{topic}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])

    def run(self) -> None:
        while not self.stop.is_set():
            for message in self._consumer.consume(1000, 0.05):
                value = message.value()
                if message.error() is None and value is not None:
                    self.received.append((time.time(), msgspec.json.decode(value)))
        self._consumer.close()


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50_ms": round(cuts[49], 1),
        "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(max(values), 1),
    }


def main(
    rate: float = typer.Option(10_000, help="Background events per second."),
    seconds: float = typer.Option(60, help="How long triggers are injected (after warm-up)."),
    warmup: float = typer.Option(15, help="Seconds of traffic before the first trigger."),
    campaigns: int = typer.Option(70, help="Campaigns loaded."),
    triggers_per_s: float = typer.Option(10, help="Injected ATM declines per second."),
    customers: int = typer.Option(200_000, help="Simulated customers (each triggers once)."),
) -> None:
    """Measure event → offer latency; print the figures as JSON."""
    run = f"bench-offers-{int(time.time())}"
    work = Path(tempfile.mkdtemp(prefix=run))
    folder = work / "campaigns"
    folder.mkdir()
    write_campaigns(folder, campaigns)
    settings = load_settings(
        events_topics=(f"{run}.events",),
        offers_topic=f"{run}.offers",
        offer_decisions_topic=f"{run}.decisions",
        redis_prefix=run,
        campaigns_dir=folder,
        recovery_dir=work / "recovery",
    )
    topic = settings.events_topics[0]
    prepare_topics(settings, "kafka")  # events, dead letters, offers, decisions
    config = SimulationConfig(
        customers=customers,
        rate=rate,
        duration_s=warmup + seconds + ATM_DELAY_S + 15,
        seed=7,
        start=datetime.now(UTC),
    )
    client = redis.Redis.from_url(settings.redis_url)
    extract = work / "customers.csv"
    write_sample_extract(extract, config)
    load_customers(client, settings.redis_prefix, extract)
    eligible = [
        row["customer_id"]
        for row in sample_rows(config)
        if row["sms_consent"] == "true" and "personal_loan" not in row["products"]
    ]

    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSTREAM_")}
    env.update(settings.as_environment())
    log = (work / "job.log").open("wb")
    job = subprocess.Popen(
        [sys.executable, "-m", "flows", "run", "--source", "kafka", "--tail", "--no-api"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    offers = _Reader(settings, settings.offers_topic)
    decisions = _Reader(settings, settings.offer_decisions_topic)
    offers.start()
    decisions.start()
    producer = Producer({**settings.kafka_config(), "linger.ms": 2, "acks": 1})
    produced_at: dict[str, float] = {}
    try:
        # Event times start now, when production starts (not when the set-up began).
        start = time.time()
        config = msgspec.structs.replace(config, start=datetime.fromtimestamp(start, UTC))
        traffic = generate(config)
        sent = 0
        next_trigger = start + warmup
        trigger_end = start + warmup + seconds
        total = config.event_count
        while sent < total:
            now = time.time()
            due = min(total, int((now - start) * rate))
            while sent < due:
                message = next(traffic)
                producer.produce(topic, message.value, message.key)
                sent += 1
            while next_trigger <= now < trigger_end and eligible:
                customer_id = eligible.pop()
                event_id = f"{run}-atm-{customer_id}"
                produced_at[event_id] = time.time()
                producer.produce(
                    topic, _atm_decline(event_id, customer_id, time.time()), customer_id.encode()
                )
                next_trigger += 1 / triggers_per_s
            producer.poll(0)
            time.sleep(0.002)
        producer.flush(30)
        lag_end = time.time() + 20
        while time.time() < lag_end and len(offers.received) < len(produced_at) * 0.8:
            time.sleep(0.5)
    finally:
        job.send_signal(signal.SIGINT)
        try:
            job.wait(60)
        except subprocess.TimeoutExpired:
            job.kill()
        offers.stop.set()
        decisions.stop.set()
        offers.join(10)
        decisions.join(10)
    latencies = []
    for received, offer in offers.received:
        trigger = offer.get("trigger_event_id")
        if trigger in produced_at:
            delay = _ms(offer["send_at"]) - _ms(offer["trigger_time"])
            latencies.append((received - produced_at[trigger]) * 1000 - delay)
    decided = [
        float(d["latency_ms"])
        for _, d in decisions.received
        if d.get("stage") == "match" and d.get("latency_ms") is not None
    ]
    by_window: dict[int, list[float]] = {}
    for received, decision in decisions.received:
        if decision.get("stage") == "match" and decision.get("latency_ms") is not None:
            by_window.setdefault(int(received // 10) * 10, []).append(float(decision["latency_ms"]))
    timeline = {
        f"+{window - min(by_window)}s": round(statistics.median(values))
        for window, values in sorted(by_window.items())
    }
    report = {
        "rate_events_per_s": rate,
        "campaigns": campaigns,
        "triggers": len(produced_at),
        "offers_for_triggers": len(latencies),
        "event_to_offer_minus_delay": _percentiles(latencies),
        "decision_latency_all_matches": _percentiles(decided),
        "decisions": len(decisions.received),
        "median_decision_latency_ms_by_10s_window": timeline,
        "job_log": str(work / "job.log"),
    }
    print(json.dumps(report, indent=2))


def _ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


if __name__ == "__main__":
    typer.run(main)
