"""The skeleton end to end on the real Kafka, Redis and S3, checked against the reference."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from sinks.dead_letters import decode_dead_letter
from sources.kafka import ensure_topics
from sources.simulator import SimulatedMessage, SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.exact import figures
from tests.support.identity_reference import ingest_identities
from tests.support.job import run_job
from tests.support.readback import archive_rows, redis_dump, topic_values
from tests.support.reference import expected_from

EVENT_COLUMNS = ("event_type", "channel", "customer_id", "device_id", "screen", "app_version")


def produce(services: Services, messages: list[SimulatedMessage]) -> None:
    topic = services.settings.events_topics[0]
    with KafkaWriter(services.settings.kafka_bootstrap_servers, topic) as writer:
        for message in messages:
            writer.write(message)


def minute_counts(dump: dict[str, object], prefix: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for key, fields in dump.items():
        if key.startswith(f"{prefix}:minute:events_by_type:"):
            assert isinstance(fields, dict)
            minute = key.removeprefix(f"{prefix}:minute:events_by_type:")
            for event_type, n in fields.items():
                counts[(minute, event_type)] += int(n)
    return counts


def test_ten_thousand_events_with_noise_and_a_replay(services: Services, tmp_path: Path) -> None:
    settings = services.settings
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
    config = SimulationConfig(
        customers=400, rate=200, duration_s=50, seed=20261125,
        duplicate_rate=0.02, malformed_rate=0.01, late_rate=0.01, late_max_s=60,
    )  # fmt: skip
    messages = list(generate(config))
    assert config.event_count == 10_000
    half = len(messages) // 2
    recovery = tmp_path / "recovery"

    produce(services, messages[:half])
    run_job(settings, "kafka", recovery)
    midway = tmp_path / "recovery-midway"
    shutil.copytree(recovery, midway)
    produce(services, messages[half:])
    run_job(settings, "kafka", recovery)

    expected = expected_from([m.value for m in messages])
    kinds = Counter(m.kind for m in messages)
    # The reference agrees with what the simulator meant, and the noise is really there.
    assert len(expected.rejected) == kinds["malformed"] > 50
    assert expected.duplicates == kinds["duplicate"] > 100

    # Redis: per-minute counts equal the valid unique events, by minute and type.
    dump = redis_dump(services.redis, settings.redis_prefix)
    assert minute_counts(dump, settings.redis_prefix) == expected.events_per_minute()
    pipeline = dump[f"{settings.redis_prefix}:pipeline"]
    assert isinstance(pipeline, dict)
    assert int(pipeline["valid"]) == len(expected.valid_unique) == 10_000
    assert int(pipeline["duplicates"]) == expected.duplicates
    assert int(pipeline["dead_letters"]) == len(expected.rejected)

    # Dead letters: every malformed message, with its bytes and a reason.
    letters = [decode_dead_letter(v) for v in topic_values(settings, settings.dlq_topic_for(topic))]
    assert sorted(d.original for d in letters) == sorted(expected.rejected)
    assert all(
        d.reason and d.stage in {"decode", "validate"} and d.source == topic for d in letters
    )

    # S3: the archive holds exactly the valid unique events, each in its event-time partition.
    rows = archive_rows(services.s3, settings)
    assert sorted(r["event_id"] for r in rows) == sorted(expected.valid_unique)
    for row in rows:
        event = expected.valid_unique[row["event_id"]]
        assert {c: row[c] for c in EVENT_COLUMNS} == {c: event.get(c) for c in EVENT_COLUMNS}
        assert (row["_dt"], row["_hour"]) == (
            row["event_time"].strftime("%Y-%m-%d"), row["event_time"].strftime("%H"),
        )  # fmt: skip
        assert row["ingest_topic"] == topic
    # Identity as known when processed: its customer id, else its device's customer from a login
    # at or before it if the job had read one (4 partitions are read in no fixed order), else the
    # device.
    identities = ingest_identities(expected.valid_unique)
    for row in rows:
        assert row["identity"] in identities[row["event_id"]].possible, row
    anonymous = [r for r in rows if r["customer_id"] is None]
    assert any(not r["identity"].startswith("device:") for r in anonymous)

    # Replay the second half from the midway recovery store: nothing may change.
    objects_before = sorted(services.s3.find(f"{settings.s3_bucket}/{settings.s3_prefix}"))
    run_job(settings, "kafka", midway)
    assert figures(redis_dump(services.redis, settings.redis_prefix)) == figures(dump)
    services.s3.invalidate_cache()
    assert sorted(services.s3.find(f"{settings.s3_bucket}/{settings.s3_prefix}")) == objects_before
    replayed = archive_rows(services.s3, settings)
    assert sorted(map(_row_key, replayed)) == sorted(map(_row_key, rows))
    # Except the identity known at ingest, which depends on which partition the replay read first.
    for row in replayed:
        assert row["identity"] in identities[row["event_id"]].possible, row


def _row_key(row: dict[str, object]) -> str:
    return repr(sorted((k, v) for k, v in row.items() if k != "identity"))
