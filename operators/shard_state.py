"""Per-shard state: dedupe by event_id with bounded memory, the shard's watermark, the identity
of each event (stitching anonymous starts to logins, per device), and the per-batch figures
handed on to the aggregates, the journeys and the archive.

Shards are keyed by device (or by customer for events without a device), so that every event
of a device meets its logins in one place.

A shard holds many customers; the unit of work is one batch of a shard's events, so the Python
work per event is a few dict operations.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import msgspec
from clickstream_native import ShardCore
from msgspec.structs import force_setattr

from operators.clock import PartitionClock
from operators.identity import ShardIdentitiesSnapshot, empty_snapshot, native_snapshot
from state.moments import ENDLESS, NEVER
from state.records import Arrival
from state.snapshots import SnapshotVersionError, decode_snapshot, encode_snapshot

MINUTE_MS = 60_000
SNAPSHOT_VERSION = 4

# Where a shard's outputs go: the aggregate families and the archive.
EVENTS_PER_MINUTE = "events_per_minute"
PIPELINE = "pipeline"
ARCHIVE = "archive"
LOW_WATERMARK = "low_watermark_ms"
"""The pipeline figure of how far every input partition has got (event time, epoch ms): the
newest value any shard reports, not a sum."""

_encode = msgspec.msgpack.Encoder().encode

MinuteCounts = dict[int, dict[str, int]]
"""Event counts by minute (epoch ms of the minute's start) and event_type."""


class ShardConfig(msgspec.Struct, frozen=True):
    """What a shard needs to know; none of it is state."""

    allowed_lateness_ms: int
    dedupe_window_ms: int
    dedupe_max_ids: int
    session_gap_ms: int = 30 * 60_000
    device_idle_ms: int = 24 * 3600_000
    journey_shards: int = 128
    input_positions: tuple[str, ...] = ()
    """Every input partition (``<source>#<partition>``), when known: until each has given an
    event or been reported idle, nothing is late."""
    offers: bool = False
    """Hand every on-time event with a customer id to the offers, by customer shard."""


class JourneyBatch(msgspec.Struct, frozen=True, gc=False):
    """One identity shard's events for one journeys shard, with the sender's watermark."""

    watermark_ms: int
    items: bytes
    """``[identity, event]`` pairs as the native core writes them (``native/src/event.rs``;
    each event a :class:`~operators.sessions.SessionEvent` array)."""


class ShardInput(msgspec.Struct, frozen=True, gc=False):
    """One decoded batch's share for a shard: its events, and the input's progress.

    Every shard gets the progress of every batch, even with no events of its own, so that all
    shards share one view of how far each input partition has got (see :mod:`operators.clock`).
    """

    arrivals: list[Arrival]
    progress: dict[str, int]
    """Newest event time of the batch per input partition ``<source>#<partition>``."""
    idle: tuple[str, ...] = ()
    """Input partitions their source reported idle after this batch's events."""


class _ShardSnapshotV1(msgspec.Struct, frozen=True):
    version: int
    max_event_ms: int
    seen: dict[str, int]


def _by_minute(seen: dict[str, int]) -> dict[int, list[str]]:
    by_minute: dict[int, list[str]] = {}
    for event_id, minute in seen.items():
        by_minute.setdefault(minute, []).append(event_id)
    return by_minute


def _migrate(version: int, snapshot: bytes) -> ShardSnapshot:
    """Version 1 (the skeleton) had dedupe only: its devices start with no known login.
    Version 2 kept the ids as one dict (id → minute). Versions 2 and 3 kept the devices'
    identity state as Python structs; version 4 keeps the native core's bytes.
    """
    if version == 3:
        v3 = msgspec.msgpack.decode(snapshot, type=_ShardSnapshotV3)
        return ShardSnapshot(  # the undecided events' layout is unchanged
            SNAPSHOT_VERSION,
            v3.max_event_ms,
            v3.seen,
            native_snapshot(v3.identities),
            v3.undecided,
            v3.partition_newest,
            v3.partition_idle,
        )
    if version == 2:
        v2 = msgspec.msgpack.decode(snapshot, type=_ShardSnapshotV2)
        return ShardSnapshot(
            SNAPSHOT_VERSION,
            v2.max_event_ms,
            _by_minute(v2.seen),
            native_snapshot(v2.identities),
            v2.undecided,
            v2.partition_newest,
        )
    if version != 1:
        msg = f"ShardSnapshot version {version!r} cannot be restored (this code reads 1 to 4)"
        raise SnapshotVersionError(msg)
    old = msgspec.msgpack.decode(snapshot, type=_ShardSnapshotV1)
    return ShardSnapshot(
        SNAPSHOT_VERSION,
        old.max_event_ms,
        _by_minute(old.seen),
        empty_snapshot(),
        msgspec.Raw(_encode({})),
        # Its watermark carries over as an idle partition: it holds nothing back once real
        # partitions report, and stands for the input while none has.
        {"migrated-from-v1": old.max_event_ms},
        ["migrated-from-v1"],
    )


def journey_shard_name(identity: str, shard_count: int) -> str:
    """The state key of the journeys shard that holds an identity's sessions."""
    return f"journey-{zlib.crc32(identity.encode()) % shard_count:04d}"


class _ShardSnapshotV2(msgspec.Struct, frozen=True):
    version: int
    max_event_ms: int
    seen: dict[str, int]
    identities: ShardIdentitiesSnapshot
    undecided: msgspec.Raw
    partition_newest: dict[str, int] = {}


class _ShardSnapshotV3(msgspec.Struct, frozen=True):
    version: int
    max_event_ms: int
    seen: dict[int, list[str]]
    identities: ShardIdentitiesSnapshot
    undecided: msgspec.Raw
    partition_newest: dict[str, int] = {}
    partition_idle: list[str] = []


class ShardSnapshot(msgspec.Struct, frozen=True):
    """The recoverable state of one shard (encoded as msgpack bytes by :meth:`Shard.snapshot`)."""

    version: int
    max_event_ms: int
    """The newest event time over the input partitions when it was taken: kept in the layout
    (versions 1 to 4 have it) but read back only from version 1, whose watermark it was."""
    seen: dict[int, list[str]]
    """Minute index (event_ms // 60000) of the first arrival → the event ids remembered. Written
    as one msgpack array per minute, so a minute no id was added to since the last epoch is not
    encoded again."""
    identities: bytes
    """The devices' identity state: the native core's own versioned bytes."""
    undecided: msgspec.Raw
    """Anonymous events waiting for their identity: a map of event_id →
    :class:`~operators.sessions.SessionEvent` array, read and written by the native core."""
    partition_newest: dict[str, int] = {}
    """Newest event time per input partition (see :mod:`operators.clock`)."""
    partition_idle: list[str] = []
    """Input partitions reported idle (they do not hold the watermark back)."""


class _ShardSnapshotWrite(msgspec.Struct, frozen=True):
    """:class:`ShardSnapshot` as written: each minute's ids already encoded."""

    version: int
    max_event_ms: int
    seen: dict[int, msgspec.Raw]
    identities: bytes
    undecided: msgspec.Raw
    partition_newest: dict[str, int] = {}
    partition_idle: list[str] = []


class ShardBatchResult(msgspec.Struct, gc=False):
    """What one batch changed: deltas for the aggregates and rows for the archive."""

    minute_counts: MinuteCounts
    pipeline: dict[str, int]
    archive_rows: dict[str, list[Arrival]]
    """Accepted events (including late ones) by input position ``<source>#<partition>``."""
    journeys: dict[str, bytes]
    """On-time events with their identity, by journeys shard (see :class:`JourneyBatch`)."""
    watermark_ms: int = NEVER
    """This shard's watermark after the batch (the input's progress less the lateness)."""
    offers: dict[str, list[Arrival]] = {}
    """On-time events with a customer id, by customer shard (when offers are on)."""


class Shard:
    """Dedupe, watermark and identity state of one shard.

    The per-event work runs in the native core (:class:`clickstream_native.ShardCore`, one call
    per batch): dedupe, lateness, the archive rows, the counts, each device's identity state,
    the events waiting for their identity and the journeys' batches. The watermark
    (:class:`~operators.clock.PartitionClock`) and the snapshot's assembly stay here.
    """

    def __init__(self, config: ShardConfig, snapshot: bytes | None = None) -> None:
        """Create a shard, empty or from a snapshot taken by :meth:`snapshot`."""
        self._config = config
        self.clock = PartitionClock(expected=config.input_positions)
        self.core = self._core()
        if snapshot is not None:
            self._restore(snapshot)

    def _core(
        self,
        identities: bytes | None = None,
        seen: dict[int, list[str]] | None = None,
        undecided: bytes | None = None,
    ) -> ShardCore:
        config = self._config
        shards = config.journey_shards

        def shard_of(identity: str) -> str:
            return journey_shard_name(identity, shards)

        return ShardCore(
            config.session_gap_ms,
            config.device_idle_ms,
            shard_of,
            force_setattr,
            identities,
            seen,
            undecided,
        )

    @property
    def watermark_ms(self) -> int:
        """The low watermark of the input partitions minus the allowed lateness.

        Anything older is late. With one partition this is PRODUCT.md's "newest event time
        seen minus the allowed lateness".
        """
        return self.clock.low_ms() - self._config.allowed_lateness_ms

    @property
    def remembered_ids(self) -> int:
        """How many event ids the dedupe currently remembers."""
        return self.core.remembered_ids

    def process(
        self,
        arrivals: Iterable[Arrival],
        progress: dict[str, int] | None = None,
        idle: Iterable[str] = (),
    ) -> ShardBatchResult:
        """Take one batch of this shard's events.

        The batch is handled in event-time order: it mixes several input partitions, each read
        a batch at a time, so arrival order within it says nothing about time. (Sorting is
        stable, so repeats of one event_id keep their arrival order.) Lateness is judged
        against the watermark as it stood at the start of the batch; ``progress`` (newest event
        time per input partition in this batch) and ``idle`` (partitions their source reported
        idle after it) move it afterwards.
        """
        batch = arrivals if isinstance(arrivals, list) else list(arrivals)
        clock = self.clock
        watermark = self.watermark_ms
        if progress is None:
            # Without the decoder's progress (tests): the on-time events' own times.
            progress = {}
            for arrival in batch:
                if arrival.event_ms >= watermark:
                    where = f"{arrival.source}#{arrival.partition}"
                    progress[where] = max(progress.get(where, NEVER), arrival.event_ms)
        minute_counts, valid, duplicates, late, archive_rows, offers = self.core.take(
            batch, watermark, self._config.offers
        )
        for where, newest in progress.items():
            clock.observe(where, newest)
        for where in idle:
            clock.mark_idle(where)
        watermark = self.watermark_ms
        self.core.resolve(watermark)
        journeys = self.core.journey_batches()
        self.core.free_idle(watermark)
        self._evict()
        pipeline = {"valid": valid, "duplicates": duplicates, "late": late}
        return ShardBatchResult(
            minute_counts, pipeline, archive_rows, journeys, watermark, offers or {}
        )

    def flush_identities(self) -> dict[str, bytes]:
        """At the end of a bounded input: decide every undecided event as if time ran on."""
        self.core.resolve(ENDLESS, everything=True)
        return self.core.journey_batches()

    def _evict(self) -> None:
        """Forget ids older than the dedupe window, then the oldest ones over the cap."""
        # From the slowest active partition: a lagging partition's repeats are still caught.
        cutoff = (self.clock.low_ms() - self._config.dedupe_window_ms) // MINUTE_MS
        self.core.evict(cutoff, self._config.dedupe_max_ids)

    def snapshot(self) -> bytes:
        """An immutable copy of the state (msgpack bytes, versioned)."""
        segments = {m: msgspec.Raw(ids) for m, ids in self.core.seen_segments().items()}
        return encode_snapshot(
            _ShardSnapshotWrite(
                SNAPSHOT_VERSION,
                self.clock.max_ms,
                segments,
                self.core.identities_snapshot(),
                msgspec.Raw(self.core.undecided_snapshot()),
                self.clock.newest,
                sorted(self.clock.idle),
            )
        )

    def _restore(self, snapshot: bytes) -> None:
        state = decode_snapshot(snapshot, ShardSnapshot, SNAPSHOT_VERSION, migrate=_migrate)
        self.core = self._core(state.identities, state.seen, bytes(state.undecided))
        self.clock = PartitionClock(
            state.partition_newest, self._config.input_positions, state.partition_idle
        )
