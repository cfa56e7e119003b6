"""Archive buffering: accepted events held in recoverable state until written as Parquet.

Rows are buffered per input partition and cut into chunks by offset range ([k·N, (k+1)·N)), so a
chunk's object name comes from the input position and a replay after a crash rewrites the same
objects with the same rows. An open chunk is rewritten whole when it gets old, so data reaches S3
within the configured age even when traffic is slow; it leaves the state once the input has moved
well past its range.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import msgspec

from state.archive_layout import EVENTS_TABLE, HOUR_MS, events_object_name, hive_partition
from state.records import ArchiveObject, Arrival
from state.snapshots import SnapshotVersionError, decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 2
_offset = operator.attrgetter("offset")
_encode = msgspec.msgpack.Encoder().encode


class ArchiveSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one input partition's archive buffer.

    A chunk's rows are stored as segments (msgpack arrays of rows): rows only ever append to a
    chunk, so each epoch encodes the rows that arrived since the last one and reuses the bytes
    of the older segments instead of encoding every buffered row again.
    """

    version: int
    chunks: dict[int, list[msgspec.Raw]]
    retired_below: int
    max_offset: int


class _ArchiveSnapshotRead(msgspec.Struct, frozen=True):
    version: int
    chunks: dict[int, list[list[Arrival]]]
    retired_below: int
    max_offset: int


class _ArchiveSnapshotV1(msgspec.Struct, frozen=True):
    version: int
    chunks: dict[int, list[Arrival]]
    retired_below: int
    max_offset: int


def _migrate(version: int, snapshot: bytes) -> _ArchiveSnapshotRead:
    """Version 1 kept each chunk as one list of rows."""
    if version != 1:
        msg = f"ArchiveSnapshot version {version!r} cannot be restored (this code reads 1 and 2)"
        raise SnapshotVersionError(msg)
    old = msgspec.msgpack.decode(snapshot, type=_ArchiveSnapshotV1)
    chunks = {index: [rows] for index, rows in old.chunks.items()}
    return _ArchiveSnapshotRead(SNAPSHOT_VERSION, chunks, old.retired_below, old.max_offset)


class ArchiveBuffer:
    """Buffers one input partition's accepted events and decides when to write which object."""

    def __init__(self, chunk_rows: int, max_age_s: float, snapshot: bytes | None = None) -> None:
        """Create a buffer, empty or from a snapshot.

        Args:
            chunk_rows: offsets per object (and so at most this many rows per object).
            max_age_s: an open chunk with new rows is written at least this often.
            snapshot: bytes from :meth:`snapshot`.
        """
        self._chunk_rows = chunk_rows
        self._max_age_s = max_age_s
        self._chunks: dict[int, list[Arrival]] = {}
        self._retired_below = 0
        self._max_offset = -1
        self._dirty_since: dict[int, float] = {}
        self._encoded: dict[int, tuple[int, list[msgspec.Raw]]] = {}
        """Chunk → (rows encoded so far, their segments), for :meth:`snapshot`."""
        if snapshot is not None:
            state = decode_snapshot(
                snapshot, _ArchiveSnapshotRead, SNAPSHOT_VERSION, migrate=_migrate
            )
            self._chunks = {
                k: [row for segment in segments for row in segment]
                for k, segments in state.chunks.items()
            }
            self._retired_below = state.retired_below
            self._max_offset = state.max_offset

    @property
    def buffered_rows(self) -> int:
        """Rows held in state."""
        return sum(len(rows) for rows in self._chunks.values())

    def add(self, rows: Iterable[Arrival], now: float) -> list[ArchiveObject]:
        """Buffer rows; return the objects to write now (chunks the input has moved past)."""
        size = self._chunk_rows
        stragglers: list[Arrival] = []
        chunks = self._chunks
        retired_below = self._retired_below
        max_offset = self._max_offset
        last_index = -1
        chunk: list[Arrival] = []
        for row in rows:
            offset = row.offset
            index = offset // size
            if index != last_index:
                if index < retired_below:
                    stragglers.append(row)
                    continue
                found = chunks.get(index)
                if found is None:
                    found = chunks[index] = []
                chunk = found
                last_index = index
                self._dirty_since.setdefault(index, now)
            chunk.append(row)
            if offset > max_offset:
                max_offset = offset
        self._max_offset = max_offset
        objects = self._objects_of_rows(stragglers, straggler=True) if stragglers else []
        # A chunk is complete once the input is half a chunk past its end: rows reach this
        # step through the shards, so a little slack lets the slowest shard catch up.
        slack = max(size // 2, 1)
        for index in sorted(self._chunks):
            if self._max_offset < (index + 1) * size + slack:
                break
            objects.extend(self._write(index))
            del self._chunks[index]
            self._retired_below = index + 1
        return objects

    def due(self, now: float) -> list[ArchiveObject]:
        """Objects of open chunks whose unwritten rows are older than the maximum age."""
        objects: list[ArchiveObject] = []
        for index, since in sorted(self._dirty_since.items()):
            if now - since >= self._max_age_s:
                objects.extend(self._write(index))
        return objects

    def flush_all(self) -> list[ArchiveObject]:
        """Objects of every chunk with unwritten rows (at the end of the input)."""
        objects: list[ArchiveObject] = []
        for index in sorted(self._dirty_since):
            objects.extend(self._write(index))
        return objects

    def next_due(self) -> float | None:
        """When the oldest unwritten rows reach the maximum age (wall-clock seconds)."""
        if not self._dirty_since:
            return None
        return min(self._dirty_since.values()) + self._max_age_s

    def mark_all_dirty(self, now: float) -> None:
        """After a restore, rewrite every open chunk: its object may predate the crash."""
        for index in self._chunks:
            self._dirty_since.setdefault(index, now)

    def _write(self, index: int) -> list[ArchiveObject]:
        self._dirty_since.pop(index, None)
        rows = self._chunks.get(index)
        if not rows:
            return []
        return self._objects_of_rows(rows, straggler=False, first_offset=index * self._chunk_rows)

    def _objects_of_rows(
        self, rows: list[Arrival], *, straggler: bool, first_offset: int = 0
    ) -> list[ArchiveObject]:
        by_hour: dict[int, list[Arrival]] = {}
        for row in sorted(rows, key=_offset):
            hour_rows = by_hour.get(row.event_ms // HOUR_MS)
            if hour_rows is None:
                by_hour[row.event_ms // HOUR_MS] = [row]
            else:
                hour_rows.append(row)
        objects = []
        for hour_index, part_rows in sorted(by_hour.items()):
            dt, hour = hive_partition(hour_index * HOUR_MS)
            first = part_rows[0]
            start = first.offset if straggler else first_offset
            stem = events_object_name(first.source, first.partition, start)
            if straggler:
                stem += "-straggler"
            objects.append(ArchiveObject(EVENTS_TABLE, dt, hour, stem, part_rows))
        return objects

    def snapshot(self) -> bytes:
        """An immutable copy of the state (encoding only the rows new since the last one)."""
        encoded = self._encoded
        for gone in [index for index in encoded if index not in self._chunks]:
            del encoded[gone]
        chunks: dict[int, list[msgspec.Raw]] = {}
        for index, rows in self._chunks.items():
            done, segments = encoded.get(index, (0, []))
            if len(rows) < done:  # not append-only after all: start this chunk afresh
                done, segments = 0, []
            if len(rows) > done:
                segments = [*segments, msgspec.Raw(_encode(rows[done:]))]
                encoded[index] = (len(rows), segments)
            chunks[index] = segments
        return encode_snapshot(
            ArchiveSnapshot(SNAPSHOT_VERSION, chunks, self._retired_below, self._max_offset)
        )
