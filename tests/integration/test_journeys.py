"""A simulated day read as a backlog through the real Kafka and Redis: every journey figure
checked against the definitions computed independently from the input, after a SIGKILL and a
resume mid-stream."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import (
    assert_journeys_exact,
    assert_minute_series_complete,
    assert_sessions_exact,
)
from tests.support.job import crash_midway, run_job
from tests.support.journey_reference import figures
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import expected_from


def test_a_simulated_day_gives_exact_figures_across_a_crash(
    services: Services, tmp_path: Path
) -> None:
    # The job's default poll (20,000 messages a partition) spans hours of event time on a day
    # this sparse: the partitions run far apart, as a real backlog's do.
    settings = services.settings.model_copy(update={"epoch_interval_s": 1.0})
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
    config = SimulationConfig(
        customers=2500, rate=2.0, duration_s=86_400, seed=4242, daily_curve=True,
        start=datetime(2026, 1, 15, tzinfo=UTC),
        duplicate_rate=0.01, malformed_rate=0.005, late_rate=0.01, late_max_s=60,
    )  # fmt: skip
    segment_of = load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, config)

    messages = list(generate(config))
    cut = int(len(messages) * 0.4)
    recovery = tmp_path / "recovery"
    log = tmp_path / "job.log"
    crash_midway(services.redis, settings, messages[:cut], recovery, log)
    with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
        for message in messages[cut:]:
            writer.write(message)
    # The rest as a bounded run: at its end every open session is final.
    run_job(settings, "kafka", recovery)

    expected = figures(
        expected_from([m.value for m in messages]).valid_unique, segment_of, settings.redis_prefix
    )
    dump = redis_dump(services.redis, settings.redis_prefix)
    pipeline = dump[f"{settings.redis_prefix}:pipeline"]
    assert int(pipeline["valid"]) == 172_800, (pipeline, log.read_text()[-2000:])
    assert int(pipeline["late"]) == 0, pipeline
    assert "late_for_sessions" not in pipeline, pipeline
    assert len(expected.session_list) > 5000
    assert any(s.identity.startswith("device:") for s in expected.session_list)
    assert_journeys_exact(dump, expected, settings.redis_prefix)
    assert_minute_series_complete(dump, settings.redis_prefix)
    # Every session once: the resume closes each session at the same point of the input as the
    # first run did, so it lands in the same object.
    assert_sessions_exact(archive_rows(services.s3, settings, "sessions"), expected)
