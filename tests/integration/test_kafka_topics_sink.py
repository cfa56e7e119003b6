"""Messages to Kafka topics are delivered, or the job stops (it never drops them silently)."""

from __future__ import annotations

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage

from sinks.kafka_topics import DeliveryFailedError, KafkaTopicsSink, Message
from sources.kafka import ensure_topics
from tests.conftest import Services
from tests.support.readback import topic_values


def test_every_message_reaches_its_own_topic(services: Services) -> None:
    settings = services.settings
    base = settings.events_topics[0]
    topics = [f"{base}.a", f"{base}.b"]
    ensure_topics(settings.kafka_config(), topics, 2)
    partition = KafkaTopicsSink(settings.kafka_config()).build("out", 0, 1)
    batch: list[Message] = [
        KafkaSinkMessage(b"k", f"{n}".encode(), topic=topics[n % 2]) for n in range(1000)
    ]
    partition.write_batch(batch)
    partition.close()
    assert sorted(int(v) for v in topic_values(settings, topics[0])) == list(range(0, 1000, 2))
    assert sorted(int(v) for v in topic_values(settings, topics[1])) == list(range(1, 1000, 2))


def test_a_batch_kafka_does_not_take_stops_the_job() -> None:
    # Nothing listens on port 1: the messages time out instead of being dropped unnoticed.
    sink = KafkaTopicsSink(
        {"bootstrap.servers": "127.0.0.1:1"}, flush_timeout_s=10, config={"message.timeout.ms": 500}
    )
    partition = sink.build("out", 0, 1)
    with pytest.raises(DeliveryFailedError, match=r"did not take 3 message"):
        batch: list[Message] = [KafkaSinkMessage(b"k", b"v", topic="offers")] * 3
        partition.write_batch(batch)
