"""Kafka, Redis or S3 unreachable for a minute in the middle of a day's backlog with offers on:
the job waits, says so once, and every figure, archive row and offer comes out as if nothing
happened.

The servers are cut off through a TCP proxy (``tests/support/proxy.py``): stopping the local
Redis or moto would wipe what they hold. Kafka's clients are sent to the proxy by the broker
itself (the stack's fault-test listener advertises the proxy's port), so that the connections to
the partitions' leader go through it too, not only the first one.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest

from devstack.paths import StackPaths
from devstack.services.kafka import Kafka
from flows.runner import prepare_topics
from sources.customer_sample import sample_rows
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings, load_settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import assert_journeys_exact, assert_sessions_exact
from tests.support.job import accepted, start_job, wait_for, with_offers
from tests.support.journey_reference import figures
from tests.support.offers_reference import expected_offers
from tests.support.proxy import TcpProxy
from tests.support.readback import archive_rows, redis_dump, topic_values
from tests.support.reference import expected_from
from tests.support.shipped_campaigns import SPECS

OUTAGE_S = 60
KAFKA = Kafka(load_settings(), StackPaths.default())


def _proxy(settings: Settings, service: str) -> TcpProxy:
    """A proxy in front of ``service``; for Kafka, on the port the stack's fault-test listener
    sends its clients to (so that every connection of the job goes through it)."""
    if service == "kafka":
        return TcpProxy("127.0.0.1", KAFKA.faults_port, listen_port=KAFKA.faults_proxy_port)
    target = urlsplit(str(settings.redis_url if service == "redis" else settings.s3_endpoint_url))
    return TcpProxy(target.hostname or "127.0.0.1", target.port or 0)


def _through(settings: Settings, service: str, proxy: TcpProxy) -> Settings:
    address = f"127.0.0.1:{proxy.port}"
    if service == "kafka":
        return settings.model_copy(update={"kafka_bootstrap_servers": address})
    if service == "redis":
        return settings.model_copy(update={"redis_url": f"redis://{address}/0"})
    return settings.model_copy(update={"s3_endpoint_url": f"http://{address}"})


@pytest.mark.parametrize("service", ["kafka", "redis", "s3"])
def test_a_minute_without_kafka_redis_or_s3_changes_no_figure_row_or_offer(
    services: Services, tmp_path: Path, service: str
) -> None:
    config = SimulationConfig(
        customers=1500, rate=1.0, duration_s=86_400, seed=91, daily_curve=True,
        start=datetime(2026, 3, 9, tzinfo=UTC),
        duplicate_rate=0.01, malformed_rate=0.005, late_rate=0.01, late_max_s=60,
    )  # fmt: skip
    direct = with_offers(
        services.settings, tmp_path / "campaigns", health_port=0, offers_holdout_share=0.05
    )
    prepare_topics(direct, "kafka")
    segment_of = load_simulated_customers(services.redis, direct.redis_prefix, tmp_path, config)
    messages = list(generate(config))
    with KafkaWriter(direct.kafka_config(), direct.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)

    with _proxy(direct, service) as proxy:
        settings = _through(direct, service, proxy)
        log = tmp_path / "job.log"
        job = start_job(settings, "kafka", tmp_path / "recovery", log, tail=False)
        try:
            wait_for(lambda: accepted(services.redis, direct) > 15_000, 120, "progress")
            proxy.cut()
            time.sleep(OUTAGE_S)
            held_at = accepted(services.redis, direct)
            assert job.poll() is None, log.read_text()[-3000:]
            proxy.restore()
            assert job.wait(300) == 0, log.read_text()[-3000:]
        finally:
            if job.poll() is None:
                job.kill()
    text = log.read_text()
    name = {"kafka": "Kafka", "redis": "Redis", "s3": "S3"}[service]
    assert text.count(f"{name} at 127.0.0.1:{proxy.port} is unreachable") == 1, text[-3000:]
    assert f"{name} at 127.0.0.1:{proxy.port} is back" in text, text[-3000:]
    assert held_at < len(messages)

    # Every figure, session and event row, every offer and decision, as without the outage.
    valid = expected_from([m.value for m in messages]).valid_unique
    expected = figures(valid, segment_of, direct.redis_prefix)
    dump = redis_dump(services.redis, direct.redis_prefix)
    assert int(dump[f"{direct.redis_prefix}:pipeline"]["valid"]) == 86_400
    assert_journeys_exact(dump, expected, direct.redis_prefix)
    assert_sessions_exact(archive_rows(services.s3, direct, "sessions"), expected)
    events = archive_rows(services.s3, direct, "events")
    assert Counter(r["event_id"] for r in events).most_common(1)[0][1] == 1
    assert {r["event_id"] for r in events} == set(valid)

    customers = {row["customer_id"]: row for row in sample_rows(config)}
    offers_expected = expected_offers(
        list(valid.values()), customers, SPECS, holdout_share=0.05, global_daily_cap=3,
        timezone="Europe/Warsaw",
    )  # fmt: skip
    assert offers_expected.sent, "the day triggers no offer: the test would prove nothing"
    offers = [msgspec.json.decode(v) for v in topic_values(direct, direct.offers_topic)]
    assert not [i for i, n in Counter(o["offer_id"] for o in offers).items() if n > 1]
    assert {o["offer_id"] for o in offers} == set(offers_expected.sent)
    decisions = {
        msgspec.json.decode(v)["decision_id"]
        for v in topic_values(direct, direct.offer_decisions_topic)
    }
    rows = archive_rows(services.s3, direct, "offers")
    assert Counter(r["decision_id"] for r in rows).most_common(1)[0][1] == 1
    assert {r["decision_id"] for r in rows} == decisions
