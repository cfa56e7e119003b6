"""Kafka input: Bytewax's partitioned Kafka source, its messages turned into raw messages.

The recovery store holds each partition's offset; consumer-group offsets are not committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage

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
    return RawMessage(item.topic, item.partition, item.offset, item.value, item.key)
