"""Per-shard state: dedupe by event_id with bounded memory, the shard's watermark, and the
per-batch figures handed on to the aggregates and the archive.

A shard holds many customers; the unit of work is one batch of a shard's events, so the Python
work per event is a few dict operations.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from state.records import Arrival
from state.snapshots import decode_snapshot, encode_snapshot

MINUTE_MS = 60_000
SNAPSHOT_VERSION = 1

# Where a shard's outputs go: the aggregate families and the archive.
EVENTS_PER_MINUTE = "events_per_minute"
PIPELINE = "pipeline"
ARCHIVE = "archive"

MinuteCounts = dict[int, dict[str, int]]
"""Event counts by minute (epoch ms of the minute's start) and event_type."""


class ShardConfig(msgspec.Struct, frozen=True):
    """What a shard needs to know; none of it is state."""

    allowed_lateness_ms: int
    dedupe_window_ms: int
    dedupe_max_ids: int


class ShardSnapshot(msgspec.Struct, frozen=True):
    """The recoverable state of one shard (encoded as msgpack bytes by :meth:`Shard.snapshot`)."""

    version: int
    max_event_ms: int
    seen: dict[str, int]
    """event_id → minute index (event_ms // 60000) of the first arrival."""


class ShardBatchResult(msgspec.Struct, gc=False):
    """What one batch changed: deltas for the aggregates and rows for the archive."""

    minute_counts: MinuteCounts
    pipeline: dict[str, int]
    archive_rows: dict[str, list[Arrival]]
    """Accepted events (including late ones) by input position ``<source>#<partition>``."""


class Shard:
    """Dedupe and watermark state of one shard."""

    def __init__(self, config: ShardConfig, snapshot: bytes | None = None) -> None:
        """Create a shard, empty or from a snapshot taken by :meth:`snapshot`."""
        self._config = config
        self.max_event_ms = -(2**62)
        self._seen: dict[str, int] = {}
        self._seen_by_minute: dict[int, list[str]] = {}
        if snapshot is not None:
            self._restore(snapshot)

    @property
    def watermark_ms(self) -> int:
        """Newest event time seen minus the allowed lateness: anything older is late."""
        return self.max_event_ms - self._config.allowed_lateness_ms

    @property
    def remembered_ids(self) -> int:
        """How many event ids the dedupe currently remembers."""
        return len(self._seen)

    def process(self, arrivals: Iterable[Arrival]) -> ShardBatchResult:
        """Take one batch of this shard's events, in arrival order."""
        seen = self._seen
        by_minute = self._seen_by_minute
        minute_counts: MinuteCounts = {}
        archive_rows: dict[str, list[Arrival]] = {}
        lateness = self._config.allowed_lateness_ms
        max_ms = self.max_event_ms
        valid = duplicates = late = 0
        last_position = ""
        last_rows: list[Arrival] = []
        for arrival in arrivals:
            event = arrival.event
            event_id = event.event_id
            if event_id in seen:
                duplicates += 1
                continue
            event_ms = arrival.event_ms
            minute = event_ms // MINUTE_MS
            seen[event_id] = minute
            ids = by_minute.get(minute)
            if ids is None:
                by_minute[minute] = [event_id]
            else:
                ids.append(event_id)
            valid += 1
            if event_ms < max_ms - lateness:
                late += 1
            else:
                per_type = minute_counts.get(minute * MINUTE_MS)
                if per_type is None:
                    minute_counts[minute * MINUTE_MS] = {event.event_type: 1}
                else:
                    per_type[event.event_type] = per_type.get(event.event_type, 0) + 1
                if event_ms > max_ms:
                    max_ms = event_ms
            position = f"{arrival.source}#{arrival.partition}"
            if position != last_position:
                last_rows = archive_rows.setdefault(position, [])
                last_position = position
            last_rows.append(arrival)
        self.max_event_ms = max_ms
        self._evict()
        pipeline = {"valid": valid, "duplicates": duplicates, "late": late}
        return ShardBatchResult(minute_counts, pipeline, archive_rows)

    def _evict(self) -> None:
        """Forget ids older than the dedupe window, then the oldest ones over the cap."""
        by_minute = self._seen_by_minute
        seen = self._seen
        cutoff = (self.max_event_ms - self._config.dedupe_window_ms) // MINUTE_MS
        expired = [minute for minute in by_minute if minute < cutoff]
        remaining = len(seen) - sum(len(by_minute[minute]) for minute in expired)
        cap = self._config.dedupe_max_ids
        if remaining > cap:
            for minute in sorted(m for m in by_minute if m >= cutoff):
                if remaining <= cap:
                    break
                expired.append(minute)
                remaining -= len(by_minute[minute])
        for minute in expired:
            for event_id in by_minute.pop(minute):
                del seen[event_id]

    def snapshot(self) -> bytes:
        """An immutable copy of the state (msgpack bytes, versioned)."""
        return encode_snapshot(ShardSnapshot(SNAPSHOT_VERSION, self.max_event_ms, self._seen))

    def _restore(self, snapshot: bytes) -> None:
        state = decode_snapshot(snapshot, ShardSnapshot, SNAPSHOT_VERSION)
        self.max_event_ms = state.max_event_ms
        self._seen = dict(state.seen)
        for event_id, minute in self._seen.items():
            self._seen_by_minute.setdefault(minute, []).append(event_id)
