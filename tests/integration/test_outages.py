"""Redis or S3 unreachable for a minute in the middle of a day's backlog: the job waits, says
so once, reports not ready, and every figure and archive row comes out as if nothing happened.

The servers are cut off through a TCP proxy (``tests/support/proxy.py``): stopping the local
Redis or moto would wipe what they hold.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flows.settings import Settings
from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import assert_journeys_exact, assert_sessions_exact
from tests.support.job import accepted, start_job, wait_for
from tests.support.journey_reference import figures
from tests.support.proxy import TcpProxy
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import expected_from

OUTAGE_S = 60


def _through(settings: Settings, service: str, proxy: TcpProxy) -> Settings:
    if service == "redis":
        return settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"})
    return settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{proxy.port}"})


@pytest.mark.parametrize("service", ["redis", "s3"])
def test_a_minute_without_redis_or_s3_changes_no_figure_and_no_row(
    services: Services, tmp_path: Path, service: str
) -> None:
    config = SimulationConfig(
        customers=1500, rate=1.0, duration_s=86_400, seed=91, daily_curve=True,
        start=datetime(2026, 3, 9, tzinfo=UTC),
        duplicate_rate=0.01, malformed_rate=0.005, late_rate=0.01, late_max_s=60,
    )  # fmt: skip
    direct = services.settings.model_copy(update={"epoch_interval_s": 1.0, "health_port": 0})
    target = urlsplit(str(direct.redis_url if service == "redis" else direct.s3_endpoint_url))
    topic = direct.events_topics[0]
    ensure_topics(direct.kafka_config(), [topic, direct.dlq_topic_for(topic)], 4)
    segment_of = load_simulated_customers(services.redis, direct.redis_prefix, tmp_path, config)
    messages = list(generate(config))
    with KafkaWriter(direct.kafka_bootstrap_servers, topic) as writer:
        for message in messages:
            writer.write(message)

    with TcpProxy(target.hostname or "127.0.0.1", target.port or 0) as proxy:
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
    name = "Redis" if service == "redis" else "S3"
    assert text.count(f"{name} at 127.0.0.1:{proxy.port} is unreachable") == 1, text[-3000:]
    assert f"{name} at 127.0.0.1:{proxy.port} is back" in text, text[-3000:]
    assert held_at < len(messages)

    expected = figures(
        expected_from([m.value for m in messages]).valid_unique, segment_of, direct.redis_prefix
    )
    dump = redis_dump(services.redis, direct.redis_prefix)
    assert int(dump[f"{direct.redis_prefix}:pipeline"]["valid"]) == 86_400
    assert_journeys_exact(dump, expected, direct.redis_prefix)
    assert_sessions_exact(archive_rows(services.s3, direct, "sessions"), expected)
