"""Messages to Kafka topics (offers, decisions, dead letters) that are delivered or stop the job.

Bytewax's own Kafka sink flushes after every batch but does not look at delivery reports: a
message the broker never took (Kafka down longer than the producer's timeout) is dropped
silently, while the epoch's snapshot already counts it as written. This sink waits for every
report of the batch and raises when one failed, so the job stops before that epoch is
snapshotted; restarted from the recovery store, it replays the batch and writes it again
(subscribers dedupe by the messages' ids).
"""

from __future__ import annotations

from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Producer

Message = KafkaSinkMessage[bytes | None, bytes | None]


class DeliveryFailedError(RuntimeError):
    """Kafka did not take some messages of a batch; the job must stop and replay it."""


class _Partition(StatelessSinkPartition[Message]):
    def __init__(self, config: dict[str, Any], flush_timeout_s: float) -> None:
        self._producer = Producer(config)
        self._flush_timeout_s = flush_timeout_s
        self._failures: list[str] = []

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
        left = producer.flush(self._flush_timeout_s)
        if self._failures or left:
            failures, self._failures = self._failures, []
            shown = "; ".join(failures[:3]) or f"{left} still queued"
            msg = f"Kafka did not take {len(failures) or left} message(s): {shown}"
            raise DeliveryFailedError(msg)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)


class KafkaTopicsSink(DynamicSink[Message]):
    """Writes each message to its own topic (``KafkaSinkMessage.topic``), checking delivery."""

    def __init__(
        self,
        brokers: list[str],
        *,
        flush_timeout_s: float = 60.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        """A sink for these brokers; ``config`` adds librdkafka producer settings."""
        self._config: dict[str, Any] = {
            "bootstrap.servers": ",".join(brokers),
            "enable.idempotence": True,
            "linger.ms": 2,
            **(config or {}),
        }
        self._flush_timeout_s = flush_timeout_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        """One producer per worker."""
        return _Partition(self._config, self._flush_timeout_s)
