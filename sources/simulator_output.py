"""Where the simulator's messages go: a Kafka topic or a JSON-lines file, with a progress bar.

:func:`emit` drives a run: it paces the messages to the wall clock when asked, counts them by
kind, shows progress and hands each message to a writer (:class:`KafkaWriter` or
:class:`JsonLinesWriter`).
"""

from __future__ import annotations

import gzip
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka import KafkaError, Message, Producer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sources.simulator import SimulatedMessage

# How many messages go between two polls of the producer (which serves delivery reports) and two
# updates of the progress bar: often enough to be live, rare enough to cost nothing per message.
_POLL_EVERY = 10_000
_PROGRESS_EVERY = 2_000


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge some of the simulated messages."""


class MessageWriter(ABC):
    """Somewhere to write simulated messages; a context that closes it."""

    @abstractmethod
    def write(self, message: SimulatedMessage) -> None:
        """Write one message."""

    @abstractmethod
    def close(self) -> None:
        """Finish writing; raise if anything written is not safely stored."""

    def abandon(self) -> None:
        """The run failed: finish what can be finished quickly, without raising again."""
        self.close()

    def __enter__(self) -> Self:
        """The writer itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the output, or abandon it when the run failed (the original error speaks)."""
        if exc_type is None:
            self.close()
        else:
            self.abandon()


@dataclass
class EmissionSummary:
    """What a run wrote, by kind of message.

    Attributes:
        events: valid events, late ones included (each counted once).
        late: valid events emitted after newer events.
        duplicates: byte-identical repeats of earlier messages.
        malformed: messages that break the event contract.
        interrupted: the run was stopped (Ctrl-C or SIGTERM) before its end.
    """

    events: int = 0
    late: int = 0
    duplicates: int = 0
    malformed: int = 0
    interrupted: bool = False

    @property
    def messages(self) -> int:
        """Every message written: events, duplicates and malformed ones."""
        return self.events + self.duplicates + self.malformed


class KafkaWriter(MessageWriter):
    """Produces messages to one Kafka topic, keyed by customer id (device id when anonymous).

    The producer batches (``linger.ms`` 20, up to 100,000 messages a batch, lz4) and is
    idempotent, so that retries neither reorder nor repeat messages: the only duplicates on the
    topic are the ones the simulator meant. Delivery failures are counted as they are reported
    and raised by :meth:`close`, which waits for every message to be acknowledged.
    """

    def __init__(
        self,
        kafka: str | Mapping[str, str],
        topic: str,
        *,
        delivery_timeout_s: float = 120.0,
    ) -> None:
        """Connect a producer.

        Args:
            kafka: the brokers (a comma-separated ``host:port`` list), or librdkafka settings
                with ``bootstrap.servers`` and the connection's security
                (``Settings.kafka_config``).
            topic: the topic to write to.
            delivery_timeout_s: how long a message may wait for the broker before it counts as
                failed.
        """
        self.topic = topic
        connection = {"bootstrap.servers": kafka} if isinstance(kafka, str) else dict(kafka)
        self.bootstrap_servers = connection["bootstrap.servers"]
        self._delivery_timeout_s = delivery_timeout_s
        self._failed = 0
        self._first_failure: str | None = None
        self._produced = 0
        self._producer = Producer(
            {
                **connection,
                "client.id": "clickstream-simulator",
                "linger.ms": 20,
                "batch.num.messages": 100_000,
                "compression.type": "lz4",
                "enable.idempotence": True,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1_048_576,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
            }
        )

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = str(error)

    def write(self, message: SimulatedMessage, partition: int | None = None) -> None:
        """Queue one message for delivery (waits while the producer's queue is full).

        ``partition`` places it there instead of by its key (tests and benchmarks that shape
        how a topic's partitions run apart).
        """
        producer = self._producer
        while True:
            try:
                if partition is None:
                    producer.produce(self.topic, message.value, message.key)
                else:
                    producer.produce(self.topic, message.value, message.key, partition)
                break
            except BufferError:
                producer.poll(0.05)
        self._produced += 1
        if self._produced % _POLL_EVERY == 0:
            producer.poll(0)

    def close(self) -> None:
        """Wait until every message is acknowledged or has failed.

        Raises:
            DeliveryError: when any message was not delivered, with the count and the first
                reason.
        """
        undelivered = self._producer.flush(self._delivery_timeout_s + 10)
        failed = self._failed + undelivered
        if failed:
            reason = self._first_failure or "no acknowledgement before the timeout"
            raise DeliveryError(
                f"{failed:,} of {self._produced:,} messages were not delivered to topic "
                f"{self.topic!r} at {self.bootstrap_servers}: {reason}"
            )

    def abandon(self) -> None:
        """Deliver what is queued, briefly (the run failed or was interrupted)."""
        self._producer.flush(5)


class JsonLinesWriter(MessageWriter):
    """Writes one message value per line; gzip-compressed when the path ends with ``.gz``.

    Keys are not written: a replay takes the identity from the event itself. A gzip file carries
    no name or time stamp, so the same run writes the same bytes.
    """

    def __init__(self, path: Path) -> None:
        """Create (or overwrite) the file, and its folder if need be.

        Args:
            path: the file to write.
        """
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = path.open("wb")
        self._gzip = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            if path.name.endswith(".gz")
            else None
        )
        self._write = self._raw.write if self._gzip is None else self._gzip.write

    def write(self, message: SimulatedMessage) -> None:
        """Append one message as a line."""
        self._write(message.value)
        self._write(b"\n")

    def close(self) -> None:
        """Finish the file (and its gzip trailer)."""
        if self._gzip is not None:
            self._gzip.close()
        self._raw.close()


def emit(
    messages: Iterable[SimulatedMessage],
    writer: MessageWriter,
    *,
    expected_events: int,
    realtime_rate: float | None = None,
    progress: bool = True,
) -> EmissionSummary:
    """Write a run's messages, counting them by kind.

    Args:
        messages: the simulated messages, in emission order.
        writer: where to write them; the caller closes it.
        expected_events: the run's valid events, for the progress bar.
        realtime_rate: when set, valid events are written at this many per wall-clock second
            instead of as fast as possible.
        progress: show a progress bar.

    Returns:
        How many messages of each kind were written. A KeyboardInterrupt ends the run early but
        normally (an endless real-time run is meant to be stopped); the writer is then closed as
        usual, so what was written is delivered.
    """
    summary = EmissionSummary()
    started = time.monotonic()
    per_event_s = 1.0 / realtime_rate if realtime_rate else 0.0
    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("simulating", total=expected_events)
        write = writer.write
        since_update = 0
        try:
            for message in messages:
                kind = message.kind
                is_event = kind in {"valid", "late"}
                if is_event and per_event_s:
                    # Sleep only when well ahead of the wall clock: sleeping per event would
                    # cost more than the events.
                    ahead = started + (summary.events + 1) * per_event_s - time.monotonic()
                    if ahead > 0.005:
                        time.sleep(ahead)
                        bar.update(task, completed=summary.events)
                write(message)
                if is_event:
                    summary.events += 1
                    if kind == "late":
                        summary.late += 1
                elif kind == "duplicate":
                    summary.duplicates += 1
                else:
                    summary.malformed += 1
                since_update += 1
                if since_update == _PROGRESS_EVERY:
                    bar.update(task, completed=summary.events)
                    since_update = 0
        except KeyboardInterrupt:
            summary.interrupted = True
        bar.update(task, completed=summary.events)
    return summary
