"""Messages to Kafka topics are delivered, or the job stops (it never drops them silently)."""

from __future__ import annotations

import time

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage

from sinks.kafka_topics import DeliveryFailedError, KafkaTopicsSink, Message
from sources.kafka import ensure_topics
from state.outage import Outage, ServiceDownError, services_down
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


def test_brokers_out_of_reach_hold_the_batch_then_stop_the_job_past_the_limit() -> None:
    # Nothing listens on port 1: the batch waits (an outage), and past the limit the job stops
    # with the reason instead of acknowledging messages Kafka never took.
    sink = KafkaTopicsSink(
        {"bootstrap.servers": "127.0.0.1:1"}, flush_timeout_s=1, outage_limit_s=3
    )
    partition = sink.build("out", 0, 1)
    began = time.monotonic()
    with pytest.raises(ServiceDownError, match=r"Kafka at 127.0.0.1:1 has been unreachable"):
        partition.write_batch([KafkaSinkMessage(b"k", b"v", topic="offers")])
    assert time.monotonic() - began >= 3
    assert "Kafka" in services_down()  # /ready says so until the brokers answer again
    Outage("Kafka", "127.0.0.1:1", lambda _: False).up()  # this process goes on with other tests
