"""Per-shard state: dedupe by event_id with bounded memory, the shard's watermark, and the
per-batch figures handed on to the aggregates and the archive.

A shard holds many customers; the unit of work is one batch of a shard's events, so the Python
work per event is a few dict operations.
"""

from __future__ import annotations

from collections import Counter
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
        self._evicted_below = -(2**62)
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
        counted: list[tuple[int, str]] = []
        archive_rows: dict[str, list[Arrival]] = {}
        lateness = self._config.allowed_lateness_ms
        max_ms = self.max_event_ms
        valid = duplicates = late = 0
        last_source = ""
        last_partition = -1
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
            valid += 1
            if event_ms < max_ms - lateness:
                late += 1
            else:
                counted.append((minute, event.event_type))
                if event_ms > max_ms:
                    max_ms = event_ms
            if arrival.partition != last_partition or arrival.source != last_source:
                last_source, last_partition = arrival.source, arrival.partition
                last_rows = archive_rows.setdefault(f"{last_source}#{last_partition}", [])
            last_rows.append(arrival)
        self.max_event_ms = max_ms
        minute_counts: MinuteCounts = {}
        for (minute, event_type), n in Counter(counted).items():
            per_type = minute_counts.get(minute * MINUTE_MS)
            if per_type is None:
                minute_counts[minute * MINUTE_MS] = {event_type: n}
            else:
                per_type[event_type] = n
        self._evict()
        pipeline = {"valid": valid, "duplicates": duplicates, "late": late}
        return ShardBatchResult(minute_counts, pipeline, archive_rows)

    def _evict(self) -> None:
        """Forget ids older than the dedupe window, then the oldest ones over the cap.

        Runs a full pass only when the window's start moves to a new minute or the cap is
        exceeded, so its cost is spread thin over the events.
        """
        cutoff = (self.max_event_ms - self._config.dedupe_window_ms) // MINUTE_MS
        cap = self._config.dedupe_max_ids
        if len(self._seen) > cap:
            per_minute = sorted(Counter(self._seen.values()).items(), reverse=True)
            kept = 0
            for minute, n in per_minute:
                if kept + n > cap:
                    cutoff = max(cutoff, minute + 1)
                    break
                kept += n
        if cutoff > self._evicted_below:
            self._seen = {i: m for i, m in self._seen.items() if m >= cutoff}
            self._evicted_below = cutoff

    def snapshot(self) -> bytes:
        """An immutable copy of the state (msgpack bytes, versioned)."""
        return encode_snapshot(ShardSnapshot(SNAPSHOT_VERSION, self.max_event_ms, self._seen))

    def _restore(self, snapshot: bytes) -> None:
        state = decode_snapshot(snapshot, ShardSnapshot, SNAPSHOT_VERSION)
        self.max_event_ms = state.max_event_ms
        self._seen = dict(state.seen)
