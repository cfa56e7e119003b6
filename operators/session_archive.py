"""Closed sessions held by the hour of their first event until written to the ``sessions`` table."""

from __future__ import annotations

import msgspec

from operators.journeys import SessionRecord
from state.archive_layout import SESSIONS_TABLE
from state.hour_groups import HourGroups
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1


class SessionArchiveSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one part of the sessions table: its sessions by hour."""

    version: int
    groups: dict[int, list[SessionRecord]]
    retired_below: int
    shard: str


def _session_start(record: SessionRecord) -> int:
    return record.start_ms


def _session_id(record: SessionRecord) -> str:
    return record.session_id


class SessionArchive(HourGroups[SessionRecord]):
    """Closed sessions from every journeys shard, by the hour of their first event."""

    def __init__(self, max_age_s: float, retire_ms: int, snapshot: bytes | None = None) -> None:
        """Create the buffer, empty or from a snapshot."""
        super().__init__(SESSIONS_TABLE, max_age_s, retire_ms, _session_start, _session_id)
        if snapshot is not None:
            state = decode_snapshot(snapshot, SessionArchiveSnapshot, SNAPSHOT_VERSION)
            self._restore(state.groups, state.retired_below, state.shard)

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(
            SessionArchiveSnapshot(SNAPSHOT_VERSION, self._groups, self._retired_below, self._shard)
        )
