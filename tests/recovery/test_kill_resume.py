"""Kill the job with SIGKILL mid-stream and resume it: nothing lost, nothing counted twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.integration.test_pipeline import minute_counts
from tests.support.identity_reference import ingest_identities
from tests.support.job import accepted, start_job, wait_for
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import expected_from


def test_a_killed_job_resumes_without_loss_or_double_counting(
    services: Services, tmp_path: Path
) -> None:
    settings = services.settings.model_copy(
        update={"epoch_interval_s": 1.0, "archive_max_age_s": 1.0, "archive_chunk_rows": 700}
    )
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
    config = SimulationConfig(
        customers=300, rate=100, duration_s=120, seed=77, duplicate_rate=0.02, malformed_rate=0.01
    )
    messages = list(generate(config))
    expected = expected_from([m.value for m in messages])
    recovery = tmp_path / "recovery"
    log = tmp_path / "job.log"

    with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
        for message in messages[: len(messages) // 3]:
            writer.write(message)
    job = start_job(settings, "kafka", recovery, log)
    try:
        wait_for(lambda: accepted(services.redis, settings) > 1000, 120, "the job to make progress")
        with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
            for message in messages[len(messages) // 3 : 2 * len(messages) // 3]:
                writer.write(message)
        time.sleep(1.5)  # let an epoch or two close with part of the second third consumed
        job.send_signal(signal.SIGKILL)
        job.wait(30)
        before_resume = accepted(services.redis, settings)
        assert 0 < before_resume < len(expected.valid_unique)

        job = start_job(settings, "kafka", recovery, log)
        with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
            for message in messages[2 * len(messages) // 3 :]:
                writer.write(message)
        total = len(expected.valid_unique)
        wait_for(
            lambda: accepted(services.redis, settings) >= total, 180, f"{total} events in Redis"
        )
        wait_for(
            lambda: len(archive_rows(services.s3, settings)) >= total, 120, "the archive to fill"
        )
        time.sleep(3)  # anything still in flight would show up as an excess now
    finally:
        job.terminate()
        job.wait(30)

    dump = redis_dump(services.redis, settings.redis_prefix)
    pipeline = dump[f"{settings.redis_prefix}:pipeline"]
    assert isinstance(pipeline, dict)
    assert int(pipeline["valid"]) == total, log.read_text()[-3000:]
    assert int(pipeline["duplicates"]) == expected.duplicates
    assert int(pipeline["dead_letters"]) == len(expected.rejected)
    assert minute_counts(dump, settings.redis_prefix) == expected.events_per_minute()
    rows = archive_rows(services.s3, settings)
    assert sorted(r["event_id"] for r in rows) == sorted(expected.valid_unique)
    identities = ingest_identities(expected.valid_unique)
    assert all(r["identity"] in identities[r["event_id"]].possible for r in rows)
