"""Dead letters to Kafka: one JSON record per rejected message on ``<topic>.dlq``.

The record's key is the original message key, so a dead letter sits beside its customer's other
events; delivery is at least once, and ``(source, partition, offset)`` identifies a repeat.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage

from state.records import DeadLetter

_encode = msgspec.json.Encoder().encode


def dead_letter_message(
    dead: DeadLetter, topic_for: Callable[[str], str]
) -> KafkaSinkMessage[bytes | None, bytes]:
    """The Kafka message for a dead letter; ``topic_for`` maps its source to the DLQ topic."""
    return KafkaSinkMessage(key=dead.key, value=_encode(dead), topic=topic_for(dead.source))


def decode_dead_letter(value: bytes) -> DeadLetter:
    """Read a dead-letter record back (for tools and tests that inspect the DLQ)."""
    return msgspec.json.decode(value, type=DeadLetter)
