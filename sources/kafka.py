"""Kafka input: every partition of the event topics as a recoverable Bytewax input partition.

The recovery store holds each partition's offset; consumer-group offsets are not committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    TopicPartition,
)
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import AdminClient

from sources.alignment import ReadAlignment
from state.outage import DEFAULT_LIMIT_S, Outage
from state.records import RawMessage, idle_mark, lag_mark
from state.stop import stop_requested

logger = logging.getLogger(__name__)

PAUSED_POLL_S = 0.05
"""How often a paused partition looks again whether the others have caught up."""
LAG_REPORT_S = 10.0
"""How often a partition says how far it is behind its end (the consumer lag)."""
PROBE_S = 5.0
"""How often a quiet partition asks whether unreachable brokers are back."""
UNREACHABLE = frozenset((ConfluentKafkaError._TRANSPORT, ConfluentKafkaError._ALL_BROKERS_DOWN))
"""librdkafka's errors for brokers that cannot be reached (it reconnects by itself)."""


class _KafkaPartition(StatefulSourcePartition[RawMessage, int]):
    """One topic partition, read from its resume offset; the snapshot is the next offset.

    It tells the dataflow when it becomes idle (see :mod:`operators.clock`): bounded, at its
    end; tailing, once read to its end and quiet for ``idle_s`` of wall clock. It pauses while
    it has read too far ahead of the slowest partition (see :mod:`sources.alignment`).
    """

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        partition: int,
        offset: int,
        batch_size: int,
        *,
        tail: bool,
        idle_s: float,
        alignment: ReadAlignment | None,
        outage: Outage,
    ) -> None:
        self._consumer = Consumer(config)
        self._outage = outage
        self._unreachable_since: float | None = None
        self._assignment = TopicPartition(topic, partition, offset)
        self._consumer.assign([self._assignment])
        self._topic = topic
        self._partition = partition
        self._position = f"{topic}#{partition}"
        self._offset = offset
        self._batch_size = batch_size
        self._tail = tail
        self._idle_s = idle_s
        self._alignment = alignment
        self._eof = False
        self._paused = False
        self._caught_up = False
        self._idle_sent = False
        self._last_record = time.monotonic()
        self._lag_reported = -LAG_REPORT_S

    def _hold(self) -> bool:
        """Pause while read too far ahead of the slowest partition; resume after."""
        alignment = self._alignment
        if alignment is None:
            return False
        ahead = alignment.ahead(self._position)
        if ahead != self._paused:
            # Pausing stops the prefetch too, so a paused partition holds no memory.
            if ahead:
                self._consumer.pause([self._assignment])
            else:
                self._consumer.resume([self._assignment])
            self._paused = ahead
        return ahead

    def next_awake(self) -> datetime | None:
        if self._paused:
            return datetime.now(UTC) + timedelta(seconds=PAUSED_POLL_S)
        return None

    def next_batch(self) -> list[RawMessage]:
        if self._eof or stop_requested():
            raise StopIteration
        if self._hold():
            return []
        messages = self._consumer.consume(self._batch_size, 0.01)
        topic, partition = self._topic, self._partition
        batch: list[RawMessage] = []
        append = batch.append
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == ConfluentKafkaError._PARTITION_EOF:
                    if not self._tail:
                        self._eof = True
                        break
                    self._caught_up = True
                    continue
                offset = message.offset()
                if offset is None or offset < 0:
                    # Not tied to a message (e.g. a broker connection problem): librdkafka
                    # retries by itself; nothing is lost by not emitting it.
                    if error.code() in UNREACHABLE:
                        self._outage.down(error.str())  # said once; stops past the limit
                        self._unreachable_since = self._unreachable_since or time.monotonic()
                    else:
                        logger.warning("Kafka error on %s[%d]: %s", topic, partition, error)
                    continue
                append(RawMessage(topic, partition, offset, message.value(), message.key(),
                                  error=str(error)))  # fmt: skip
                continue
            kind, stamp = message.timestamp()
            append(
                RawMessage(
                    topic,
                    partition,
                    message.offset(),  # type: ignore[arg-type]
                    message.value(),
                    message.key(),
                    None,
                    stamp if kind != TIMESTAMP_NOT_AVAILABLE else None,
                )
            )
            self._caught_up = False
        if batch:
            self._back()
            self._offset = batch[-1].offset + 1
            self._last_record = time.monotonic()
            self._idle_sent = False
        now = time.monotonic()
        if self._unreachable_since is not None and not batch:
            self._probe(now)
        if self._eof or now - self._lag_reported >= LAG_REPORT_S:
            self._lag_reported = now
            self._report_lag(append)
        if self._eof or (
            self._caught_up and not self._idle_sent and now - self._last_record >= self._idle_s
        ):
            append(idle_mark(topic, partition, self._offset))
            self._idle_sent = True
        return batch

    def _back(self) -> None:
        if self._unreachable_since is not None:
            self._unreachable_since = None
            self._outage.up()

    def _probe(self, now: float) -> None:
        """While the brokers were unreachable and nothing arrives (a quiet topic), ask for the
        partition's end now and then: an answer means they are back (for /ready and the log).
        """
        if now - (self._unreachable_since or now) < PROBE_S:
            return
        self._unreachable_since = now
        try:
            self._consumer.get_watermark_offsets(self._assignment, timeout=1.0)
        except KafkaException:
            return
        self._back()

    def _report_lag(self, append: Callable[[RawMessage], None]) -> None:
        """How many messages are after the next offset, by the end the consumer last fetched
        (librdkafka's cached high watermark: no request to the broker).
        """
        if self._eof:
            behind = 0
        else:
            _, high = self._consumer.get_watermark_offsets(self._assignment, cached=True)
            if high is None or high < 0:
                return
            behind = max(0, high - self._offset)
        append(lag_mark(self._topic, self._partition, self._offset, behind))

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        self._consumer.close()


class KafkaEventSource(FixedPartitionedSource[RawMessage, int]):
    """Every partition of the event topics, each an input partition of the dataflow.

    Like Bytewax's own Kafka source, the recovery store holds each partition's next offset and
    no consumer-group offsets are committed; unlike it, messages come out directly as
    :class:`~state.records.RawMessage`, which saves a Python object per message.
    """

    def __init__(
        self,
        kafka: Mapping[str, str],
        topics: Iterable[str],
        batch_size: int,
        *,
        tail: bool = True,
        group_id: str = "bank-clickstream",
        idle_s: float = 30.0,
        alignment: ReadAlignment | None = None,
        outage_limit_s: float = DEFAULT_LIMIT_S,
    ) -> None:
        """Create the source.

        Args:
            kafka: librdkafka settings of the brokers and the connection (``bootstrap.servers``,
                security), as ``Settings.kafka_config`` gives them.
            topics: the event topics.
            batch_size: messages per poll; the unit of work downstream.
            tail: keep waiting for new messages (a service); False stops at the end (a
                back-fill or a benchmark).
            group_id: reported to the brokers; offsets live in the recovery store.
            idle_s: a partition read to its end and quiet this long (wall clock) no longer
                holds the watermark back.
            alignment: pauses partitions read too far ahead (None: never pause).
            outage_limit_s: how long the brokers may be unreachable before the job stops.
        """
        self._kafka: dict[str, Any] = dict(kafka)
        self._topics = list(topics)
        self._batch_size = batch_size
        self._tail = tail
        self._group_id = group_id
        self._idle_s = idle_s
        self.alignment = alignment
        self._outage_limit_s = outage_limit_s

    def list_parts(self) -> list[str]:
        """``<partition>-<topic>`` for every partition of every topic."""
        admin = AdminClient(self._kafka)
        parts = []
        for topic in self._topics:
            metadata = admin.list_topics(topic, timeout=30).topics[topic]
            if metadata.error is not None:
                msg = f"cannot list partitions of Kafka topic {topic!r}: {metadata.error.str()}"
                raise RuntimeError(msg)
            parts += [f"{index}-{topic}" for index in sorted(metadata.partitions)]
        return parts

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        """Open one partition at its resume offset (the beginning on a first start)."""
        index, topic = for_part.split("-", 1)
        config: dict[str, Any] = {
            **self._kafka,
            "group.id": self._group_id,
            "enable.auto.commit": False,
            # Tailing, the end of a partition means caught up (one of the idle conditions).
            "enable.partition.eof": True,
            # A prefetch queue of a few polls per partition keeps a poll from waiting; more
            # only holds memory (measured: 64 MB queues cost ~280 MB of RSS on a backlog of four
            # partitions, and were no faster, see bench/RESULTS.md).
            "fetch.wait.max.ms": 50,
            "fetch.min.bytes": 1,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "fetch.max.bytes": 16 * 1024 * 1024,
            "queued.min.messages": 60_000,
            "queued.max.messages.kbytes": 16384,
        }
        offset = OFFSET_BEGINNING if resume_state is None else resume_state
        return _KafkaPartition(
            config,
            topic,
            int(index),
            offset,
            self._batch_size,
            tail=self._tail,
            idle_s=self._idle_s,
            alignment=self.alignment,
            outage=Outage("Kafka", self._kafka["bootstrap.servers"], _never, self._outage_limit_s),
        )


def _never(_error: BaseException) -> bool:
    return False


def ensure_topics(kafka: Mapping[str, str], topics: Iterable[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; return the ones created.

    Raises:
        RuntimeError: when the brokers cannot be reached or a topic cannot be created.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    errors: list[str] = []  # why the brokers refuse (a bad password, an untrusted certificate)
    config: dict[str, Any] = {**kafka, "error_cb": lambda error: errors.append(error.str())}
    admin = AdminClient(config)
    try:
        existing = set(admin.list_topics(timeout=15).topics)
    except KafkaException as exc:
        admin.poll(0)  # serves the error callbacks
        why = f" ({errors[-1]})" if errors else ""
        msg = f"cannot reach Kafka at {kafka['bootstrap.servers']}: {exc}{why}"
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
