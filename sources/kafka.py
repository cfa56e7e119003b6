"""Kafka input: Bytewax's partitioned Kafka source, its messages turned into raw messages.

The recovery store holds each partition's offset; consumer-group offsets are not committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

from state.records import RawMessage


def kafka_source(
    brokers: list[str], topics: Iterable[str], batch_size: int, *, tail: bool = True
) -> KafkaSource:
    """A source reading every partition of ``topics`` from the beginning.

    Args:
        brokers: bootstrap servers.
        topics: the event topics.
        batch_size: messages per poll; the unit of work downstream.
        tail: keep waiting for new messages (a service); False stops at the end (a back-fill).
    """
    return KafkaSource(
        brokers,
        list(topics),
        tail=tail,
        batch_size=batch_size,
        raise_on_errors=False,
        add_config={
            "fetch.min.bytes": "1",
            "fetch.wait.max.ms": "50",
            "queued.max.messages.kbytes": "262144",
        },
    )


def to_raw(item: Any) -> RawMessage:
    """Turn a Kafka source item (message or consumer error) into a raw message."""
    if isinstance(item, KafkaError):
        msg: KafkaSourceMessage[bytes | None, bytes | None] = item.msg
        return RawMessage(
            msg.topic or "",
            msg.partition or 0,
            msg.offset or -1,
            msg.value,
            msg.key,
            error=str(item.err),
        )
    kind, stamp = item.timestamp
    return RawMessage(
        item.topic,
        item.partition,
        item.offset,
        item.value,
        item.key,
        timestamp_ms=stamp if kind != TIMESTAMP_NOT_AVAILABLE else None,
    )


def ensure_topics(brokers: list[str], topics: Iterable[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; return the ones created.

    Raises:
        RuntimeError: when the brokers cannot be reached or a topic cannot be created.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": ",".join(brokers)})
    try:
        existing = set(admin.list_topics(timeout=15).topics)
    except KafkaException as exc:
        msg = f"cannot reach Kafka at {','.join(brokers)}: {exc}"
        raise RuntimeError(msg) from None
    wanted = [t for t in dict.fromkeys(topics) if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=-1) for t in wanted]
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                msg = f"cannot create Kafka topic {topic!r}: {exc}"
                raise RuntimeError(msg) from None
    return wanted
