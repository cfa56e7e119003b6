"""Closed sessions held in recoverable state until written to the archive's ``sessions`` table.

Sessions are grouped by the hour of their first event (the Hive partition) within one journeys
shard; a group's object is named by the shard and the hour, and rewritten whole whenever it has
new sessions (at most every ``max_age_s``), so a replay rewrites the same object with the same
sessions. A group leaves the state once the watermark is past its hour by ``retire_ms``; a
session closing after that (a very long one) gets an object of its own, named by its id.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from operators.archive import HOUR_MS, hive_partition
from operators.journeys import SessionRecord
from state.records import ArchiveObject
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1
SESSIONS_TABLE = "sessions"


class SessionArchiveSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one journeys shard's session groups."""

    version: int
    groups: dict[int, list[SessionRecord]]
    retired_below: int
    shard: str


class SessionArchive:
    """Groups of closed sessions by start hour, and when to write them."""

    def __init__(self, max_age_s: float, retire_ms: int, snapshot: bytes | None = None) -> None:
        """Create the buffer, empty or from a snapshot."""
        self._max_age_s = max_age_s
        self._retire_ms = retire_ms
        self._groups: dict[int, list[SessionRecord]] = {}
        self._retired_below = -(2**62)
        self._dirty_since: dict[int, float] = {}
        self._shard = ""
        if snapshot is not None:
            state = decode_snapshot(snapshot, SessionArchiveSnapshot, SNAPSHOT_VERSION)
            self._groups = {h: list(r) for h, r in state.groups.items()}
            self._retired_below = state.retired_below
            self._shard = state.shard

    def mark_all_dirty(self, now: float) -> None:
        """After a restore: the groups' objects may predate the crash."""
        for hour in self._groups:
            self._dirty_since.setdefault(hour, now)

    def add(
        self, records: Iterable[SessionRecord], shard: str, watermark_ms: int, now: float
    ) -> list[ArchiveObject]:
        """Buffer closed sessions; return the objects to write now."""
        self._shard = shard or self._shard
        objects: list[ArchiveObject] = []
        for record in records:
            hour = record.start_ms // HOUR_MS
            if hour < self._retired_below:
                objects.append(self._object(hour, [record], f"{shard}-late-{record.session_id}"))
                continue
            self._groups.setdefault(hour, []).append(record)
            self._dirty_since.setdefault(hour, now)
        for hour in sorted(self._groups):
            if (hour + 1) * HOUR_MS + self._retire_ms > watermark_ms:
                break
            objects.extend(self._write(hour))
            del self._groups[hour]
            self._retired_below = hour + 1
        return objects

    def due(self, now: float) -> list[ArchiveObject]:
        """Groups whose unwritten sessions are older than the maximum age."""
        objects: list[ArchiveObject] = []
        for hour, since in sorted(self._dirty_since.items()):
            if now - since >= self._max_age_s:
                objects.extend(self._write(hour))
        return objects

    def flush_all(self) -> list[ArchiveObject]:
        """Every group with unwritten sessions."""
        objects: list[ArchiveObject] = []
        for hour in sorted(self._dirty_since):
            objects.extend(self._write(hour))
        return objects

    def next_due(self) -> float | None:
        """When the oldest unwritten sessions become due (wall-clock seconds)."""
        return min(self._dirty_since.values()) + self._max_age_s if self._dirty_since else None

    def _write(self, hour: int) -> list[ArchiveObject]:
        self._dirty_since.pop(hour, None)
        records = self._groups.get(hour)
        if not records:
            return []
        shard = self._shard or "journeys"
        ordered = sorted(records, key=lambda r: r.session_id)
        return [self._object(hour, ordered, shard)]

    @staticmethod
    def _object(hour: int, records: list[SessionRecord], name: str) -> ArchiveObject:
        dt, hour_label = hive_partition(hour * HOUR_MS)
        return ArchiveObject(SESSIONS_TABLE, dt, hour_label, name, list(records))

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(
            SessionArchiveSnapshot(SNAPSHOT_VERSION, self._groups, self._retired_below, self._shard)
        )
