"""The reference subscriber of the offers topic: what an SMS gateway does with it.

The job writes each offer at least once (a replay after a crash writes it again, with the same
``offer_id``). A subscriber sends one SMS per offer id by:

1. reading with a consumer group and committing offsets only after an offer is handled, so that
   nothing is lost when the gateway stops (at-least-once);
2. remembering the offer ids it has handled and skipping one it has seen (dedupe), so that a
   repeated message sends nothing.

:class:`OfferGateway` does both, with the last ``remember`` ids held in memory (a real gateway
keeps them in durable storage, so that its own restart cannot repeat an SMS that was sent but
not yet committed). Messages that are not offers are reported and skipped, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from cachetools import LRUCache
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from offers.records import OFFER_SCHEMA, OfferMessage

log = logging.getLogger(__name__)

DEFAULT_REMEMBER = 1_000_000
StopReason = Literal["max", "idle", "stopped"]


class GatewayError(RuntimeError):
    """The consumer cannot go on (a fatal Kafka error)."""


class SeenOffers:
    """The last ``capacity`` offer ids handled, oldest forgotten first (bounded memory)."""

    def __init__(self, capacity: int = DEFAULT_REMEMBER) -> None:
        """An empty set that holds at most ``capacity`` ids.

        Raises:
            ValueError: When ``capacity`` is below 1.
        """
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._ids: LRUCache[str, None] = LRUCache(maxsize=capacity)

    def add(self, offer_id: str) -> bool:
        """Remember ``offer_id``; True when it is new, False when it was already remembered."""
        new = offer_id not in self._ids
        # Storing marks the id most recently seen; a new one evicts the least recent at capacity.
        self._ids[offer_id] = None
        return new

    def __contains__(self, offer_id: object) -> bool:
        """True when ``offer_id`` is remembered."""
        return offer_id in self._ids

    def __len__(self) -> int:
        """How many ids are remembered."""
        return len(self._ids)


@dataclass(frozen=True, slots=True)
class ReceivedOffer:
    """An offer read from the topic, with where it was read."""

    offer: OfferMessage
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class BadOffer:
    """A message on the offers topic that is not a v1 offer: reported and skipped."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str


@dataclass(slots=True)
class TailStats:
    """What a :meth:`OfferGateway.tail` call did."""

    offers: int = 0
    """New offers handed over (one per offer id)."""
    duplicates: int = 0
    """Messages skipped because their offer id was already handled."""
    bad: int = 0
    """Messages that are not offers."""
    stopped: StopReason | None = None


def decode_offer(value: bytes | None) -> tuple[OfferMessage | None, str | None]:
    """``(offer, None)`` for a v1 offer, ``(None, reason)`` for anything else."""
    if value is None:
        return None, "empty message (no value)"
    try:
        offer = msgspec.json.decode(value, type=OfferMessage)
    except msgspec.ValidationError as exc:
        return None, f"not an offer: {exc}"
    except msgspec.DecodeError as exc:
        return None, f"not JSON: {exc}"
    if offer.schema != OFFER_SCHEMA:
        return None, f"schema {offer.schema!r} is not {OFFER_SCHEMA!r}"
    return offer, None


def send_at_seconds(offer: OfferMessage) -> float:
    """The offer's ``send_at`` as epoch seconds."""
    return datetime.fromisoformat(offer.send_at).timestamp()


class OfferGateway:
    """Reads the offers topic in a consumer group, once per offer id.

    Use it as a context manager; :meth:`tail` hands each new offer to a callback and commits
    the offsets of what it has handled.
    """

    def __init__(
        self,
        kafka: Mapping[str, str],
        topic: str,
        group_id: str,
        *,
        from_beginning: bool = False,
        remember: int = DEFAULT_REMEMBER,
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Subscribe to ``topic``.

        Args:
            kafka: librdkafka settings of the brokers and the connection
                (``bootstrap.servers``, security), as ``Settings.kafka_config`` gives them.
            topic: the offers topic.
            group_id: the consumer group; its committed offsets say where a new run starts.
            from_beginning: read every partition from its first offer, whatever the group
                committed; otherwise from the committed offsets, or new offers only for a group
                that has none.
            remember: how many offer ids are remembered for the dedupe.
            batch_size: messages read per poll.
            clock: epoch seconds (for ``send_at`` and the idle timeout).
            sleep: waits (for ``send_at``).
        """
        self.topic = topic
        self.seen = SeenOffers(remember)
        self._from_beginning = from_beginning
        self._rewound: set[tuple[str, int]] = set()
        self._batch_size = batch_size
        self._clock = clock
        self._sleep = sleep
        self._assigned = False
        self._closed = False
        self._consumer = Consumer(
            {
                **kafka,
                "group.id": group_id,
                "enable.auto.commit": False,
                # An offset is stored only once its message is handled, so a commit never
                # covers an offer that was read but not yet handed over.
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                # --honour-send-at may wait between polls; the group must not drop us meanwhile.
                "max.poll.interval.ms": 3_600_000,
            }
        )
        self._consumer.subscribe([topic], on_assign=self._on_assign)

    def __enter__(self) -> OfferGateway:
        """The gateway itself."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Commit what was handled and leave the group."""
        self.close()

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._assigned = True
        if not self._from_beginning:
            return
        for tp in partitions:
            if (tp.topic, tp.partition) not in self._rewound:
                self._rewound.add((tp.topic, tp.partition))
                tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)

    def tail(
        self,
        on_offer: Callable[[ReceivedOffer], None],
        *,
        on_bad: Callable[[BadOffer], None] | None = None,
        on_duplicate: Callable[[ReceivedOffer], None] | None = None,
        max_offers: int | None = None,
        idle_timeout_s: float | None = None,
        honour_send_at: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        poll_s: float = 0.5,
    ) -> TailStats:
        """Hand each new offer to ``on_offer`` once, until a stop condition.

        Offsets are committed after each polled batch has been handled (and when the gateway
        closes): a message is committed only after its offer was handed over, a duplicate was
        skipped or a bad message reported.

        Args:
            on_offer: called once per new offer id, in the order read (per partition).
            on_bad: called for each message that is not an offer (default: a log warning).
            on_duplicate: called for each message whose offer id was already handed over.
            max_offers: stop after this many new offers (later messages stay uncommitted).
            idle_timeout_s: stop when no message came for this long (counted from the
                partitions' assignment, or from the start while there is none).
            honour_send_at: wait until an offer's ``send_at`` before handing it over.
            should_stop: polled between messages; True stops the tail.
            poll_s: the longest a poll waits for messages.

        Raises:
            GatewayError: On a fatal Kafka error.
        """
        stats = TailStats()
        report = on_bad if on_bad is not None else _log_bad
        last_message = self._clock()
        was_assigned = self._assigned
        while True:
            if max_offers is not None and stats.offers >= max_offers:
                stats.stopped = "max"
                break
            if should_stop():
                stats.stopped = "stopped"
                break
            messages = self._consumer.consume(self._batch_size, poll_s)
            now = self._clock()
            if self._assigned and not was_assigned:
                was_assigned = True
                last_message = now
            if not messages:
                if idle_timeout_s is not None and now - last_message >= idle_timeout_s:
                    stats.stopped = "idle"
                    break
                continue
            last_message = now
            for message in messages:
                if max_offers is not None and stats.offers >= max_offers:
                    break
                handled = self._handle(
                    message,
                    stats,
                    _Handlers(on_offer, report, on_duplicate),
                    honour_send_at,
                    should_stop,
                )
                if not handled:
                    break
            self.commit()
        return stats

    def _handle(
        self,
        message: Message,
        stats: TailStats,
        handlers: _Handlers,
        honour_send_at: bool,
        should_stop: Callable[[], bool],
    ) -> bool:
        """Handle one message; False when it was left unhandled (a stop while waiting)."""
        error = message.error()
        topic, partition, offset = message.topic() or "", message.partition(), message.offset()
        if error is not None:
            if error.fatal():
                raise GatewayError(f"Kafka consumer of {self.topic!r}: {error.str()}")
            if offset is None or offset < 0 or partition is None:
                log.warning("Kafka consumer of %r: %s", self.topic, error.str())
                return True
            value = message.value() or b""
            stats.bad += 1
            handlers.on_bad(BadOffer(topic, partition, offset, message.key(), value, error.str()))
            self._consumer.store_offsets(message)
            return True
        assert partition is not None and offset is not None
        offer, reason = decode_offer(message.value())
        if offer is None:
            stats.bad += 1
            value = message.value() or b""
            handlers.on_bad(BadOffer(topic, partition, offset, message.key(), value, reason or "?"))
        elif offer.offer_id in self.seen:
            stats.duplicates += 1
            self.seen.add(offer.offer_id)
            if handlers.on_duplicate is not None:
                handlers.on_duplicate(ReceivedOffer(offer, topic, partition, offset))
        else:
            if honour_send_at and not self._wait_until(send_at_seconds(offer), should_stop):
                return False
            handlers.on_offer(ReceivedOffer(offer, topic, partition, offset))
            self.seen.add(offer.offer_id)
            stats.offers += 1
        self._consumer.store_offsets(message)
        return True

    def _wait_until(self, due_s: float, should_stop: Callable[[], bool]) -> bool:
        while (left := due_s - self._clock()) > 0:
            if should_stop():
                return False
            self._sleep(min(left, 0.5))
        return True

    def commit(self) -> None:
        """Commit the offsets of the messages handled so far (synchronously)."""
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            code = exc.args[0].code() if exc.args else None
            if code != ConfluentKafkaError._NO_OFFSET:
                log.warning("committing offsets of %r failed: %s", self.topic, exc)

    def close(self) -> None:
        """Commit what was handled and leave the group (once)."""
        if self._closed:
            return
        self._closed = True
        self.commit()
        self._consumer.close()


@dataclass(frozen=True, slots=True)
class _Handlers:
    on_offer: Callable[[ReceivedOffer], None]
    on_bad: Callable[[BadOffer], None]
    on_duplicate: Callable[[ReceivedOffer], None] | None


def _log_bad(bad: BadOffer) -> None:
    log.warning(
        "skipped a message that is not an offer at %s[%d]@%d: %s",
        bad.topic,
        bad.partition,
        bad.offset,
        bad.reason,
    )
