"""A simulated day through the real Kafka and Redis: every journey figure checked against the
definitions computed independently from the input, after a SIGKILL and a resume mid-stream."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.job import crash_midway, run_job
from tests.support.journey_reference import figures
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import expected_from

JOURNEY_FAMILIES = (":day:", ":minute:journeys:")


def test_a_simulated_day_gives_exact_figures_across_a_crash(
    services: Services, tmp_path: Path
) -> None:
    # A day at 2 events/s is sparse: a poll of 5,000 messages per partition would span hours
    # of event time, more than the partition idle bound. 200 per poll spans minutes, as a
    # 5,000-message poll does at a real bank's rate.
    settings = services.settings.model_copy(
        update={"epoch_interval_s": 1.0, "kafka_batch_size": 200}
    )
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_brokers, [topic, settings.dlq_topic_for(topic)], 4)
    config = SimulationConfig(
        customers=2500, rate=2.0, duration_s=86_400, seed=4242,
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

    for key, fields in expected.hashes.items():
        assert _ints(dump.get(key)) == dict(fields), key
    for key, members in expected.zsets.items():
        assert _ints(dump.get(key)) == dict(members), key
    written = {
        k
        for k in dump
        if any(f in k for f in JOURNEY_FAMILIES)
        and not k.endswith(("conversion_rate", "completion_rate"))
    }
    assert written == set(expected.hashes) | set(expected.zsets)

    # The journeys stream (Grafana's line chart) has one entry per closed minute.
    series = dump[f"{settings.redis_prefix}:series:journeys"]
    assert len(series) > 1000
    for entry_id, fields in series:
        minute_ms = int(entry_id.split("-")[0])
        label = datetime.fromtimestamp(minute_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")
        hash_fields = expected.hashes[f"{settings.redis_prefix}:minute:journeys:{label}"]
        assert int(fields["active_customers"]) == hash_fields["active_customers"], label

    # The archive's sessions table holds every session once, as the definitions give them.
    archived = archive_rows(services.s3, settings, "sessions")
    assert sorted((r["session_id"], r["identity"], r["event_count"]) for r in archived) == sorted(
        (s.sid, s.identity, len(s.events)) for s in expected.session_list
    )
    for key, value in dump.items():
        if key.endswith(":conversion_rate"):
            base = key.removesuffix(":conversion_rate")
            for field, rate in value.items():
                sessions = expected.hashes[f"{base}:sessions"][field]
                conversions = expected.hashes[f"{base}:conversions"][field]
                assert abs(float(rate) - conversions / sessions) < 1e-6, (key, field)


def _ints(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if isinstance(value, list):  # a sorted set read back as (member, score) pairs
        return {m: int(float(s)) for m, s in value}
    return {k: int(v) for k, v in value.items()}
