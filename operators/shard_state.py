"""Per-shard state: dedupe by event_id with bounded memory, the shard's watermark, the identity
of each event (stitching anonymous starts to logins, per device), and the per-batch figures
handed on to the aggregates, the journeys and the archive.

Shards are keyed by device (or by customer for events without a device), so that every event
of a device meets its logins in one place.

A shard holds many customers; the unit of work is one batch of a shard's events, so the Python
work per event is a few dict operations.
"""

from __future__ import annotations

import operator
import zlib
from collections import Counter
from collections.abc import Iterable
from sys import intern

import msgspec
from msgspec.structs import force_setattr

from operators.clock import NEVER, PartitionClock
from operators.identity import (
    EVENT,
    LATE,
    LOGIN,
    ShardIdentities,
    ShardIdentitiesSnapshot,
    native_snapshot,
)
from operators.sessions import SessionEvent
from state.contract import Event
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

_event_ms = operator.attrgetter("event_ms")
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


JourneyItem = tuple[str, SessionEvent]
"""(identity, event): what the journeys receive."""


class JourneyBatch(msgspec.Struct, frozen=True, gc=False):
    """One identity shard's events for one journeys shard, with the sender's watermark."""

    watermark_ms: int
    items: list[JourneyItem]


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
    identity state as Python structs; version 4 keeps the native core's bytes."""
    if version == 3:
        v3 = msgspec.msgpack.decode(snapshot, type=_ShardSnapshotV3)
        return ShardSnapshot(
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
        ShardIdentities(0, 0).snapshot(),
        {},
        # Its watermark carries over as an idle partition: it holds nothing back once real
        # partitions report, and stands for the input while none has.
        {"migrated-from-v1": old.max_event_ms},
        ["migrated-from-v1"],
    )


def journey_shard_name(identity: str, shard_count: int) -> str:
    """The state key of the journeys shard that holds an identity's sessions."""
    return f"journey-{zlib.crc32(identity.encode()) % shard_count:04d}"


def session_event(
    event: Event, event_ms: int, device_id: str | None, customer_id: str | None
) -> SessionEvent:
    """What the journeys need of an event, given its device and customer id strings.

    Repeated strings are shared: the caller passes the one copy of the device and customer id
    it keeps, and the few app, version, OS, screen, element and form names are interned. Open
    sessions hold millions of events, and one copy of "dashboard" per event is memory the
    journeys then walk through. (Event types and channels are shared by the decoder already.)
    """
    error_code = event.properties.get("error_code") if event.event_type == "error" else None
    app, app_version, os = event.app, event.app_version, event.os
    screen, element, form = event.screen, event.element, event.form
    return SessionEvent(
        event_ms,
        event.event_id,
        event.event_type,
        event.channel,
        device_id,
        customer_id,
        None if app is None else intern(app),
        None if app_version is None else intern(app_version),
        None if os is None else intern(os),
        None if screen is None else intern(screen),
        None if element is None else intern(element),
        None if form is None else intern(form),
        None if error_code is None else str(error_code),
    )


class _ShardSnapshotV2(msgspec.Struct, frozen=True):
    version: int
    max_event_ms: int
    seen: dict[str, int]
    identities: ShardIdentitiesSnapshot
    undecided: dict[str, SessionEvent]
    partition_newest: dict[str, int] = {}


class _ShardSnapshotV3(msgspec.Struct, frozen=True):
    version: int
    max_event_ms: int
    seen: dict[int, list[str]]
    identities: ShardIdentitiesSnapshot
    undecided: dict[str, SessionEvent]
    partition_newest: dict[str, int] = {}
    partition_idle: list[str] = []


class ShardSnapshot(msgspec.Struct, frozen=True):
    """The recoverable state of one shard (encoded as msgpack bytes by :meth:`Shard.snapshot`)."""

    version: int
    max_event_ms: int
    seen: dict[int, list[str]]
    """Minute index (event_ms // 60000) of the first arrival → the event ids remembered. Written
    as one msgpack array per minute, so a minute no id was added to since the last epoch is not
    encoded again."""
    identities: bytes
    """The devices' identity state: the native core's own versioned bytes."""
    undecided: dict[str, SessionEvent]
    """Anonymous events waiting for their identity, by event_id."""
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
    undecided: dict[str, SessionEvent]
    partition_newest: dict[str, int] = {}
    partition_idle: list[str] = []


class ShardBatchResult(msgspec.Struct, gc=False):
    """What one batch changed: deltas for the aggregates and rows for the archive."""

    minute_counts: MinuteCounts
    pipeline: dict[str, int]
    archive_rows: dict[str, list[Arrival]]
    """Accepted events (including late ones) by input position ``<source>#<partition>``."""
    journeys: dict[str, list[JourneyItem]]
    """On-time events with their identity, by journeys shard."""
    watermark_ms: int = NEVER
    """This shard's watermark after the batch (the input's progress less the lateness)."""
    offers: dict[str, list[Arrival]] = {}
    """On-time events with a customer id, by customer shard (when offers are on)."""


class Shard:
    """Dedupe and watermark state of one shard."""

    def __init__(self, config: ShardConfig, snapshot: bytes | None = None) -> None:
        """Create a shard, empty or from a snapshot taken by :meth:`snapshot`."""
        self._config = config
        self.max_event_ms = NEVER
        self._seen: dict[str, int] = {}
        self._seen_by_minute: dict[int, list[str]] = {}
        self._minute_bytes: dict[int, tuple[int, msgspec.Raw]] = {}
        self._evicted_below = NEVER
        self.identities = ShardIdentities(config.session_gap_ms, config.device_idle_ms)
        self._undecided: dict[str, SessionEvent] = {}
        self._device_names: dict[str, str] = {}
        """Device id → the shard's one copy of it (what the journeys' events share)."""
        self.clock = PartitionClock(expected=config.input_positions)
        self._journey_shard_names: dict[str, tuple[str, str]] = {}
        """Customer id → (journeys shard, the shard's one copy of the id)."""
        if snapshot is not None:
            self._restore(snapshot)

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
        return len(self._seen)

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
        arrivals = sorted(arrivals, key=_event_ms)
        seen = self._seen
        by_minute = self._seen_by_minute
        last_minute = NEVER
        minute_ids: list[str] = []
        counted: list[tuple[int, str]] = []
        archive_rows: dict[str, list[Arrival]] = {}
        clock = self.clock
        watermark = self.watermark_ms
        valid = duplicates = late = 0
        last_source = ""
        last_partition = -1
        last_rows: list[Arrival] = []
        position = ""
        journeys: dict[str, list[JourneyItem]] = {}
        journey_shards = self._config.journey_shards
        shard_names = self._journey_shard_names
        if len(shard_names) > 500_000:
            shard_names.clear()
        device_names = self._device_names
        if len(device_names) > 500_000:
            device_names.clear()
        device_events: list[tuple[str, int, str, str | None, int]] = []
        anonymous: list[Arrival] = []
        undecided = self._undecided
        offers: dict[str, list[Arrival]] | None = {} if self._config.offers else None
        for arrival in arrivals:
            event = arrival.event
            event_id = event.event_id
            if event_id in seen:
                duplicates += 1
                continue
            event_ms = arrival.event_ms
            minute = event_ms // MINUTE_MS
            seen[event_id] = minute
            if minute != last_minute:
                last_minute = minute
                found_ids = by_minute.get(minute)
                if found_ids is None:
                    found_ids = by_minute[minute] = []
                minute_ids = found_ids
            minute_ids.append(event_id)
            valid += 1
            if arrival.partition != last_partition or arrival.source != last_source:
                last_source, last_partition = arrival.source, arrival.partition
                position = f"{last_source}#{last_partition}"
                last_rows = archive_rows.setdefault(position, [])
            last_rows.append(arrival)
            customer_id = event.customer_id
            device_id = event.device_id
            event_type = event.event_type
            if event_ms < watermark:
                late += 1
                if device_id is not None and customer_id is None:
                    # Only its identity as known now, for the archive.
                    anonymous.append(arrival)
                    device_events.append((device_id, event_ms, event_id, None, LATE))
                continue
            counted.append((minute, event_type))
            if progress is None:
                clock.observe(position, event_ms)
            if device_id is not None:
                shared = device_names.get(device_id)
                if shared is None:
                    device_names[device_id] = device_id
                else:
                    device_id = shared
                if customer_id is None:
                    anonymous.append(arrival)
                kind = LOGIN if event_type == "login" else EVENT
                device_events.append((device_id, event_ms, event_id, customer_id, kind))
            if customer_id is not None:
                routed = shard_names.get(customer_id)
                if routed is None:
                    routed = shard_names[customer_id] = (
                        journey_shard_name(customer_id, journey_shards),
                        customer_id,
                    )
                name, customer_id = routed
                journey_event = session_event(event, event_ms, device_id, customer_id)
                journeys.setdefault(name, []).append((customer_id, journey_event))
                if offers is not None:
                    offers.setdefault(name, []).append(arrival)
            else:
                undecided[event_id] = session_event(event, event_ms, device_id, None)
        for where, newest in (progress or {}).items():
            clock.observe(where, newest)
        for where in idle:
            clock.mark_idle(where)
        self.max_event_ms = clock.max_ms
        watermark = self.watermark_ms
        identities = self.identities
        if device_events:
            # The identity known at each anonymous event, for the archive (the final one is
            # decided later), as the batch's earlier logins left it.
            known = identities.record_batch(device_events)
            for arrival, customer in zip(anonymous, known, strict=True):
                if customer is not None:
                    force_setattr(arrival, "known_customer", customer)
        for event_id, identity in identities.resolve(watermark):
            journey_event = undecided.pop(event_id)
            journeys.setdefault(journey_shard_name(identity, journey_shards), []).append(
                (identity, journey_event)
            )
        identities.free_idle(watermark)
        minute_counts: MinuteCounts = {}
        for (minute, counted_type), n in Counter(counted).items():
            per_type = minute_counts.get(minute * MINUTE_MS)
            if per_type is None:
                minute_counts[minute * MINUTE_MS] = {counted_type: n}
            else:
                per_type[counted_type] = n
        self._evict()
        pipeline = {"valid": valid, "duplicates": duplicates, "late": late}
        return ShardBatchResult(
            minute_counts, pipeline, archive_rows, journeys, watermark, offers or {}
        )

    def flush_identities(self) -> dict[str, list[JourneyItem]]:
        """At the end of a bounded input: decide every undecided event as if time ran on."""
        journeys: dict[str, list[JourneyItem]] = {}
        for event_id, identity in self.identities.resolve(2**62, everything=True):
            name = journey_shard_name(identity, self._config.journey_shards)
            journey_event = self._undecided.pop(event_id)
            journeys.setdefault(name, []).append((identity, journey_event))
        return journeys

    def _evict(self) -> None:
        """Forget ids older than the dedupe window, then the oldest ones over the cap.

        Runs a full pass only when the window's start moves to a new minute or the cap is
        exceeded, so its cost is spread thin over the events.
        """
        # From the slowest active partition: a lagging partition's repeats are still caught.
        cutoff = (self.clock.low_ms() - self._config.dedupe_window_ms) // MINUTE_MS
        cap = self._config.dedupe_max_ids
        by_minute = self._seen_by_minute
        if len(self._seen) > cap:
            per_minute = sorted(((m, len(ids)) for m, ids in by_minute.items()), reverse=True)
            kept = 0
            for minute, n in per_minute:
                if kept + n > cap:
                    cutoff = max(cutoff, minute + 1)
                    break
                kept += n
        if cutoff > self._evicted_below:
            seen = self._seen
            for minute in [m for m in by_minute if m < cutoff]:
                for event_id in by_minute.pop(minute):
                    del seen[event_id]
                self._minute_bytes.pop(minute, None)
            self._evicted_below = cutoff

    def _seen_segments(self) -> dict[int, msgspec.Raw]:
        """The remembered ids by minute, re-encoding only the minutes that got new ids."""
        cache = self._minute_bytes
        segments: dict[int, msgspec.Raw] = {}
        for minute, ids in self._seen_by_minute.items():
            cached = cache.get(minute)
            if cached is None or cached[0] != len(ids):
                cached = cache[minute] = (len(ids), msgspec.Raw(_encode(ids)))
            segments[minute] = cached[1]
        return segments

    def snapshot(self) -> bytes:
        """An immutable copy of the state (msgpack bytes, versioned)."""
        return encode_snapshot(
            _ShardSnapshotWrite(
                SNAPSHOT_VERSION,
                self.max_event_ms,
                self._seen_segments(),
                self.identities.snapshot(),
                self._undecided,
                self.clock.newest,
                sorted(self.clock.idle),
            )
        )

    def _restore(self, snapshot: bytes) -> None:
        state = decode_snapshot(snapshot, ShardSnapshot, SNAPSHOT_VERSION, migrate=_migrate)
        self.max_event_ms = state.max_event_ms
        self._seen_by_minute = {m: list(ids) for m, ids in state.seen.items()}
        self._seen = {i: m for m, ids in state.seen.items() for i in ids}
        self.identities = ShardIdentities(
            self._config.session_gap_ms, self._config.device_idle_ms, state.identities
        )
        self._undecided = dict(state.undecided)
        self.clock = PartitionClock(
            state.partition_newest, self._config.input_positions, state.partition_idle
        )
