"""Decode and validate raw messages in batches; anything invalid becomes a dead letter.

This is the stateless front of the job: a whole input batch is decoded at once, every rule of the
event contract is checked, and the valid events are grouped by shard so that each shard's state
sees one item per input batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from state.contract import APP_CHANNELS, Event, cross_field_problem
from state.moments import NEVER
from state.records import Arrival, DeadLetter, RawMessage

STEP_ID = "decode"


def shard_name(shard: int) -> str:
    """The state key of a shard (fixed width so that keys sort in shard order)."""
    return f"shard-{shard:04d}"


class DecodedBatch(msgspec.Struct, frozen=True, gc=False):
    """The outcome of decoding one input batch."""

    by_shard: dict[str, list[Arrival]]
    dead_letters: list[DeadLetter]
    progress: dict[str, int] = {}
    """Newest event time of this batch per input partition ``<source>#<partition>``."""
    idle: tuple[str, ...] = ()
    """Input partitions their source marked idle in this batch (see :mod:`operators.clock`)."""
    lag: dict[str, int] = {}
    """Input partitions' distance to their end, from the source's lag marks in this batch."""


class BatchDecoder:
    """Decodes raw messages into valid events grouped by shard, and dead letters."""

    def __init__(self, shard_count: int, max_event_bytes: int) -> None:
        """Create a decoder.

        Args:
            shard_count: number of shards; fixed for the life of a recovery store.
            max_event_bytes: messages larger than this are dead letters.
        """
        self._decoder = msgspec.json.Decoder(Event)
        self._shard_count = shard_count
        self._max_event_bytes = max_event_bytes
        self._shard_names = [shard_name(i) for i in range(shard_count)]

    def decode(self, messages: Iterable[RawMessage], now: datetime | None = None) -> DecodedBatch:
        """Decode a batch of messages.

        Args:
            messages: raw messages in input order.
            now: the ingest time to stamp on this batch (defaults to the system clock).

        Returns:
            Valid events grouped by shard name, in input order, and the dead letters.
        """
        ingest = now or datetime.now(UTC)
        ingest_ms = int(ingest.timestamp() * 1000)
        failed_at = ingest.isoformat()
        by_shard: dict[str, list[Arrival]] = {}
        dead: list[DeadLetter] = []
        progress: dict[tuple[str, int], int] = {}
        idle: list[str] = []
        lag: dict[str, int] = {}
        decode = self._decoder.decode
        shard_count = self._shard_count
        shard_names = self._shard_names
        crc32 = zlib.crc32
        limit = self._max_event_bytes
        for message in messages:
            value = message.value
            if message.error is not None:
                dead.append(_dead(message, "consume", "KafkaError", message.error, failed_at))
                continue
            if value is None:
                if message.idle:
                    idle.append(message.position)
                    continue
                if message.behind is not None:
                    lag[message.position] = message.behind
                    continue
                dead.append(
                    _dead(message, "decode", "EmptyMessage", "message has no value", failed_at)
                )
                continue
            if len(value) > limit:
                reason = f"message is {len(value)} bytes, over the limit of {limit} bytes"
                dead.append(_dead(message, "validate", "TooLarge", reason, failed_at))
                continue
            if not value.isascii():
                # msgspec checks the UTF-8 of what it decodes, not of an unknown field it skips.
                try:
                    value.decode()
                except UnicodeDecodeError as exc:
                    reason = f"not valid UTF-8: {exc}"
                    dead.append(_dead(message, "decode", "InvalidUtf8", reason, failed_at))
                    continue
            try:
                event = decode(value)
            except msgspec.ValidationError as exc:
                dead.append(_dead(message, "validate", "ContractViolation", str(exc), failed_at))
                continue
            except msgspec.DecodeError as exc:
                reason = f"not valid JSON: {exc}"
                dead.append(_dead(message, "decode", "InvalidJson", reason, failed_at))
                continue
            customer_id = event.customer_id
            # The common case passes without a call; the full check names what is wrong.
            if (customer_id is None and event.device_id is None) or (
                event.channel in APP_CHANNELS
                and (
                    event.app is None
                    or event.app_version is None
                    or event.os is None
                    or event.os_version is None
                )
            ):
                problem = cross_field_problem(event)
                if problem is not None:
                    dead.append(_dead(message, "validate", "ContractViolation", problem, failed_at))
                    continue
            # By device where there is one: a device's anonymous events and its logins must
            # meet in one shard to be stitched. CRC-32, not Python's hash() (salted per
            # process): the same shard in every process and after every restart.
            device_id = event.device_id
            routing = device_id if device_id is not None else customer_id or ""
            shard = shard_names[crc32(routing.encode()) % shard_count]
            event_ms = int(event.event_time.timestamp() * 1000)
            where = (message.source, message.partition)
            if event_ms > progress.get(where, NEVER):
                progress[where] = event_ms
            arrival = Arrival(
                event,
                event_ms,
                message.source,
                message.partition,
                message.offset,
                message.timestamp_ms if message.timestamp_ms is not None else ingest_ms,
            )
            bucket = by_shard.get(shard)
            if bucket is None:
                by_shard[shard] = [arrival]
            else:
                bucket.append(arrival)
        return DecodedBatch(
            by_shard,
            dead,
            {f"{source}#{partition}": ms for (source, partition), ms in progress.items()},
            tuple(idle),
            lag,
        )


def _dead(
    message: RawMessage, stage: str, error_type: str, reason: str, failed_at: str
) -> DeadLetter:
    original = message.value or b""
    try:
        text: str | None = original.decode()
    except UnicodeDecodeError:
        text = None
    return DeadLetter(
        stage=stage,
        step_id=STEP_ID,
        error_type=error_type,
        reason=reason,
        source=message.source,
        partition=message.partition,
        offset=message.offset,
        original=original,
        original_text=text,
        key=message.key,
        failed_at=failed_at,
    )
