"""Messages to Kafka topics (offers, decisions, dead letters) that are delivered or stop the job.

Bytewax's own Kafka sink flushes after every batch but does not look at delivery reports: a
message the broker never took (Kafka down longer than the producer's timeout) is dropped
silently, while the epoch's snapshot already counts it as written. This sink waits for every
report of the batch and raises when one failed, so the job stops before that epoch is
snapshotted; restarted from the recovery store, it replays the batch and writes it again
(subscribers dedupe by the messages' ids). While the brokers cannot be reached, the batch waits
(the stream holds, said once in the log, see :mod:`state.outage`) up to the outage limit.

On the offers topic a replay must not send an offer twice (one SMS per offer): the sink can be
told a topic whose messages carry an ``offer_id`` header; it then reads the ids already on that
topic (the last days of it) when it starts, and skips a message whose id is there or was
written since.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from state.outage import DEFAULT_LIMIT_S, Outage

ID_HEADER = "offer_id"

Message = KafkaSinkMessage[bytes | None, bytes | None]


class DeliveryFailedError(RuntimeError):
    """Kafka refused some messages of a batch; the job must stop and replay it."""


class _StillQueuedError(RuntimeError):
    """Messages wait for brokers that cannot be reached (an outage, waited out)."""


def ids_on_topic(kafka: Mapping[str, str], topic: str, since_ms: int) -> set[bytes]:
    """The ``offer_id`` headers of every message on ``topic`` written since ``since_ms``."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": "clickstream-offers-dedupe",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return set()
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in metadata.partitions], timeout=30
        )
        assigned = [tp for tp in starts if tp.offset >= 0]
        if not assigned:
            return set()
        consumer.assign(assigned)
        ids: set[bytes] = set()
        open_partitions = {tp.partition for tp in assigned}
        while open_partitions:
            for message in consumer.consume(10_000, 5.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(message.partition())
                        continue
                    msg = f"cannot read {topic} to skip the offers already sent: {error.str()}"
                    raise DeliveryFailedError(msg)
                headers = message.headers() or []
                pairs = headers.items() if isinstance(headers, dict) else headers
                for name, value in pairs:
                    if name == ID_HEADER and isinstance(value, bytes):
                        ids.add(value)
        return ids
    finally:
        consumer.close()


class _Partition(StatelessSinkPartition[Message]):
    def __init__(
        self,
        kafka: Mapping[str, str],
        producer: Mapping[str, Any],
        flush_timeout_s: float,
        outage: Outage,
        once_topic: str | None = None,
        once_window_s: float = 0.0,
    ) -> None:
        self._producer = Producer({**kafka, **producer})
        self._flush_timeout_s = flush_timeout_s
        self._outage = outage
        self._failures: list[str] = []
        self._once_topic = once_topic
        self._sent: set[bytes] = set()
        if once_topic is not None:
            since_ms = int((time.time() - once_window_s) * 1000)
            self._sent = ids_on_topic(kafka, once_topic, since_ms)

    def _already_sent(self, item: Message) -> bool:
        if item.topic != self._once_topic or not item.headers:
            return False
        for name, value in item.headers:
            if name == ID_HEADER and isinstance(value, bytes):
                if value in self._sent:
                    return True
                self._sent.add(value)
        return False

    def _report(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def write_batch(self, items: list[Message]) -> None:
        producer = self._producer
        report = self._report
        for item in items:
            if item.topic is None:
                msg = f"no topic for a message with key {item.key!r}"
                raise DeliveryFailedError(msg)
            if self._already_sent(item):
                continue
            headers: Any = item.headers or None
            while True:
                try:
                    producer.produce(
                        item.topic, item.value, item.key, on_delivery=report, headers=headers
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.1)
            producer.poll(0)
        # The batch is acknowledged only once every message is delivered: while the brokers
        # cannot be reached the messages stay queued and the stream holds (said once, see
        # state.outage), up to the outage limit.
        self._outage.call(self._flush)
        if self._failures:
            failures, self._failures = self._failures, []
            shown = "; ".join(failures[:3])
            msg = f"Kafka did not take {len(failures)} message(s): {shown}"
            raise DeliveryFailedError(msg)

    def _flush(self) -> None:
        left = self._producer.flush(self._flush_timeout_s)
        if left and not self._failures:
            msg = f"{left} message(s) still queued after {self._flush_timeout_s:.0f} s"
            raise _StillQueuedError(msg)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)


def _still_queued(error: BaseException) -> bool:
    return isinstance(error, _StillQueuedError)


class KafkaTopicsSink(DynamicSink[Message]):
    """Writes each message to its own topic (``KafkaSinkMessage.topic``), checking delivery."""

    def __init__(
        self,
        kafka: Mapping[str, str],
        *,
        flush_timeout_s: float = 5.0,
        outage_limit_s: float = DEFAULT_LIMIT_S,
        config: Mapping[str, Any] | None = None,
        once_topic: str | None = None,
        once_window_s: float = 7 * 86_400.0,
    ) -> None:
        """A sink for the brokers and connection of ``kafka`` (librdkafka settings, as
        ``Settings.kafka_config`` gives them); ``config`` adds producer settings. A message
        to ``once_topic`` with an ``offer_id`` header already written there in the last
        ``once_window_s`` (or by this sink since it started) is not written again.
        """
        self._once_topic = once_topic
        self._once_window_s = once_window_s
        self._kafka: dict[str, Any] = dict(kafka)
        self._outage_limit_s = outage_limit_s
        self._config: dict[str, Any] = {
            "enable.idempotence": True,
            "linger.ms": 2,
            # A message waits for the brokers as long as the job waits out an outage.
            "message.timeout.ms": int((outage_limit_s + 60) * 1000),
            **(config or {}),
        }
        self._flush_timeout_s = flush_timeout_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        """One producer per worker."""
        return _Partition(
            self._kafka,
            self._config,
            self._flush_timeout_s,
            Outage("Kafka", self._kafka["bootstrap.servers"], _still_queued, self._outage_limit_s),
            self._once_topic,
            self._once_window_s,
        )
