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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.paths import StackPaths
from devstack.services.kafka import Kafka
from flows.runner import prepare_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings, load_settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact_day import assert_day_with_offers_exact
from tests.support.job import accepted, start_job, wait_for, with_offers
from tests.support.proxy import TcpProxy

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


# Redis in make test; Kafka and S3 (80 s each) nightly, to keep make test under 20 minutes cold.
@pytest.mark.parametrize(
    "service",
    [
        pytest.param("kafka", marks=pytest.mark.nightly),
        "redis",
        pytest.param("s3", marks=pytest.mark.nightly),
    ],
)
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
    assert_day_with_offers_exact(services, direct, messages, config, segment_of)
