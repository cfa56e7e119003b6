"""Records that flow between the steps: raw input messages, accepted events and dead letters."""

from __future__ import annotations

from typing import Any

import msgspec

from state.archive_layout import object_path
from state.contract import Event


class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """One input message before decoding, with its position in the input.

    ``source`` is the Kafka topic, or ``file:<path>`` for a JSON-lines replay; ``offset`` is the
    Kafka offset or the line number (from 0). ``error`` carries a consumer error, if any.
    """

    source: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    error: str | None = None
    timestamp_ms: int | None = None
    """When the message entered Kafka (its record timestamp); None for file replays."""
    idle: bool = False
    """Not a message but a mark from the source: this input partition is idle (read to its
    end and quiet for the idle bound, or finished), so it no longer holds the watermark back
    (see :mod:`operators.clock`). Its ``value`` is None and its ``offset`` the next one."""
    behind: int | None = None
    """Not a message but a mark from the source: how many messages of this input partition are
    after ``offset`` (the next one to read), as the consumer last saw the partition's end."""

    @property
    def position(self) -> str:
        """The input partition this message came from, as ``<source>#<partition>``."""
        return f"{self.source}#{self.partition}"


def lag_mark(source: str, partition: int, next_offset: int, behind: int) -> RawMessage:
    """The mark a source emits now and then: how far ``partition`` is behind its end."""
    return RawMessage(source, partition, next_offset, None, behind=behind)


class InputLag(msgspec.Struct, frozen=True, gc=False):
    """How many messages each input partition (``<source>#<partition>``) is behind its end."""

    behind: dict[str, int]


def idle_mark(source: str, partition: int, next_offset: int) -> RawMessage:
    """The mark a source emits when ``source``'s ``partition`` becomes idle."""
    return RawMessage(source, partition, next_offset, None, idle=True)


class Arrival(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A valid event together with where and when it entered the job."""

    event: Event
    event_ms: int
    source: str
    partition: int
    offset: int
    ingest_ms: int
    known_customer: str | None = None
    """For an event without a customer id: the customer of its device's latest login at or
    before it, as its shard knew when it processed the event (set there, once)."""


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message the job could not accept, kept as data so that a person can inspect and replay it.

    Published as JSON on ``<topic>.dlq``; ``original`` is the message's bytes exactly as received
    (msgspec encodes bytes as base64 in JSON).
    """

    stage: str
    step_id: str
    error_type: str
    reason: str
    source: str
    partition: int
    offset: int
    original: bytes
    original_text: str | None = None
    """The original bytes as text, when they are UTF-8 (for people reading the topic)."""
    key: bytes | None = None
    failed_at: str
    schema: str = "bank-clickstream/dead-letter/v1"


class HashWrite(msgspec.Struct, frozen=True, gc=False):
    """Set fields of a Redis hash to absolute values (never an increment)."""

    key: str
    fields: dict[str, int | float | str]
    expire_s: int | None = None


class StreamEntry(msgspec.Struct, frozen=True, gc=False):
    """Append one entry with a fixed id to a Redis stream; a repeat of the same id is a no-op."""

    key: str
    id_ms: int
    fields: dict[str, int | float | str]
    max_len: int | None = None


class ZSetWrite(msgspec.Struct, frozen=True, gc=False):
    """Set members of a Redis sorted set to absolute scores (a ranking)."""

    key: str
    scores: dict[str, int]
    expire_s: int | None = None


RedisWrite = HashWrite | StreamEntry | ZSetWrite


class ArchiveObject(msgspec.Struct, frozen=True, gc=False):
    """One Parquet object of the archive: its table, Hive partition, deterministic name and rows."""

    table: str
    dt: str
    hour: str
    name: str
    rows: list[Any]
    """Accepted events (:class:`Arrival`) for ``events``; session records for ``sessions``."""

    @property
    def relative_path(self) -> str:
        """Path under the archive prefix: ``<table>/dt=YYYY-MM-DD/hour=HH/<name>.parquet``."""
        return object_path(self.table, self.dt, self.hour, self.name)
