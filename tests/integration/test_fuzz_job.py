"""100,000 mutated messages through the real Kafka and the real job: it never stops, and every
message is either counted (valid, duplicate or late) or a dead letter with its reason and its
original bytes, as the plain reading of the contract says."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter

from sources.kafka import ensure_topics
from sources.simulator import SimulatedMessage
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.fuzz import mutated
from tests.support.job import run_job
from tests.support.readback import redis_dump, topic_values
from tests.support.reference import is_valid

MESSAGES = 100_000


def test_a_hundred_thousand_mutated_messages_are_each_counted_or_dead_lettered(
    services: Services,
) -> None:
    settings = services.settings
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
    rng = random.Random(7_2026)
    values = [mutated(rng, n=20_000) for _ in range(MESSAGES)]
    with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
        for n, value in enumerate(values):
            writer.write(SimulatedMessage(f"k{n % 64}".encode(), value))

    run_job(settings, "kafka", None, timeout=600)

    pipeline = redis_dump(services.redis, settings.redis_prefix)[
        f"{settings.redis_prefix}:pipeline"
    ]
    # Late events are valid ones too (counted in ``valid``, and apart as ``late``).
    counted = int(pipeline["valid"]) + int(pipeline["duplicates"])
    rejected = Counter(v for v in values if not is_valid(v))
    assert int(pipeline["dead_letters"]) == sum(rejected.values()), pipeline
    assert counted + int(pipeline["dead_letters"]) == MESSAGES, pipeline
    letters = [json.loads(v) for v in topic_values(settings, settings.dlq_topic_for(topic))]
    assert Counter(base64.b64decode(d["original"]) for d in letters) == rejected
    assert all(d["reason"] and d["error_type"] for d in letters)
    assert sum(rejected.values()) > 10_000
