"""The archive's buffering steps: rows held in recoverable state until written as whole objects.

    shard_state ─ accepted events ─→ archive_buffer (per input partition) ─┐
    journeys    ─ closed sessions ─→ sessions_archive (per table part)   ──┼─→ archive (S3)
    offers      ─ decisions       ─→ offers_archive (per table part)     ──┘

The ``sessions`` and ``offers`` tables gather the rows of every shard in a step keyed by table
part (``CLICKSTREAM_ARCHIVE_TABLE_PARTS``, default 1), so an hour of either table is one object
per part, however many shards the job runs. Each shard sends its new rows with its progress
(:class:`~state.hour_groups.TableRows`); an hour leaves the state once every sender is past
it (see :class:`HourArchiveLogic`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from bytewax.operators import StatefulBatchLogic

from flows.exchange import Exchange
from flows.stateful import UpstreamProgress
from operators.archive import ArchiveBuffer
from state.archive_layout import part_name
from state.hour_groups import HourGroups, TableRows, part_of
from state.moments import ENDLESS
from state.records import ArchiveObject, Arrival
from state.snapshots import SnapshotVersionError, decode_snapshot, encode_snapshot
from state.stop import stop_requested

Clock = Callable[[], float]
HOUR_ARCHIVE_SNAPSHOT_VERSION = 1


ARCHIVE_ROWS: Exchange[list[Arrival]] = Exchange(list[Arrival])


class ArchiveLogic(StatefulBatchLogic[list[Arrival] | bytes, list[ArchiveObject], bytes]):
    """Bytewax shim around :class:`~operators.archive.ArchiveBuffer` (one per input partition)."""

    def __init__(self, buffer: ArchiveBuffer, clock: Clock, resumed: bool) -> None:
        """Wrap a buffer; after a resume every open chunk is rewritten."""
        self.buffer = buffer
        self._clock = clock
        if resumed:
            buffer.mark_all_dirty(clock())

    def on_batch(
        self, packed: list[list[Arrival] | bytes]
    ) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """Buffer the rows; emit objects that are complete or due."""
        values = ARCHIVE_ROWS.unpack(packed)
        now = self._clock()
        objects = self.buffer.add((row for rows in values for row in rows), now)
        objects.extend(self.buffer.due(now))
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """Write open chunks whose rows reached the maximum age."""
        objects = self.buffer.due(self._clock())
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """The input ended (a back-fill or a bounded run): write everything open.

        On a requested stop the open chunks stay in the saved state.
        """
        if stop_requested():
            return [], StatefulBatchLogic.RETAIN
        objects = self.buffer.flush_all()
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """When the oldest unwritten rows become due."""
        due = self.buffer.next_due()
        return None if due is None else datetime.fromtimestamp(due, UTC)

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.buffer.snapshot()


class HourArchiveSnapshot(msgspec.Struct, frozen=True):
    """One table part's rows by hour, and what each sender still holds open."""

    version: int
    groups: bytes
    open_from: dict[str, int]


class HourArchiveLogic(StatefulBatchLogic[TableRows, list[ArchiveObject], bytes]):
    """One part of the ``sessions`` or ``offers`` table: the rows of every shard, by hour.

    The part's progress is the newest watermark heard (every sender acts on the same input, see
    :class:`~flows.stateful.UpstreamProgress`), held back to the earliest hour a sender still
    holds rows open for: a journeys shard counts a session when it closes, long after its start
    hour. An hour leaves the state once that progress is past it by the table's allowance.
    """

    def __init__(
        self,
        groups: HourGroups[Any],
        clock: Clock,
        *,
        open_from: dict[str, int] | None = None,
        resumed: bool = False,
        upstream: UpstreamProgress | None = None,
    ) -> None:
        """Wrap a table part's hour groups; after a resume every group it holds is rewritten."""
        self.groups = groups
        self._clock = clock
        self._open_from = open_from or {}
        self._upstream = upstream or UpstreamProgress(wait_for_epoch=False)
        if resumed:
            groups.mark_all_dirty(clock())

    def _progress(self, watermark_ms: int) -> int:
        return min(watermark_ms, min(self._open_from.values(), default=ENDLESS))

    def on_batch(self, values: list[TableRows]) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """Buffer the senders' rows; emit the objects of hours that became final or are due."""
        watermark = self._upstream.heard(max(v.watermark_ms for v in values))
        for value in values:
            self._open_from[value.sender] = value.open_from_ms
        now = self._clock()
        rows = [row for value in values for row in value.rows]
        objects = self.groups.add(rows, values[0].part, self._progress(watermark), now)
        objects.extend(self.groups.due(now))
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """Write the hours whose new rows reached the maximum age."""
        objects = self.groups.due(self._clock())
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[list[ArchiveObject]], bool]:
        """A bounded input ended: every row has arrived; write every hour with new rows.

        On a requested stop the hours stay in the saved state.
        """
        if stop_requested():
            return [], StatefulBatchLogic.RETAIN
        self._upstream.at_end()
        objects = self.groups.flush_all()
        return ([objects] if objects else []), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """When the oldest unwritten rows become due."""
        due = self.groups.next_due()
        return None if due is None else datetime.fromtimestamp(due, UTC)

    def epoch_closed(self) -> None:
        """The watermarks heard in the epoch are safe to act on."""
        self._upstream.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        self.epoch_closed()
        return encode_snapshot(
            HourArchiveSnapshot(
                HOUR_ARCHIVE_SNAPSHOT_VERSION, self.groups.snapshot(), dict(self._open_from)
            )
        )


def hour_archive_logic(
    resume: bytes | None,
    groups: Callable[[bytes | None], HourGroups[Any]],
    clock: Clock,
    *,
    wait_for_epoch: bool,
) -> HourArchiveLogic:
    """A table part's step logic, from its snapshot or new; ``groups`` builds the table's
    :class:`HourGroups` from its own snapshot bytes (or empty).
    """
    state = (
        decode_snapshot(resume, HourArchiveSnapshot, HOUR_ARCHIVE_SNAPSHOT_VERSION)
        if resume is not None
        else None
    )
    return HourArchiveLogic(
        groups(state.groups if state else None),
        clock,
        open_from=dict(state.open_from) if state else None,
        resumed=state is not None,
        upstream=UpstreamProgress(wait_for_epoch=wait_for_epoch),
    )


def table_rows(
    table: str,
    parts: int,
    sender: str,
    watermark_ms: int,
    rows: list[Any],
    row_id: Callable[[Any], str],
    open_from_ms: int = ENDLESS,
) -> Iterable[tuple[str, TableRows]]:
    """A shard's rows for each part of a table; every part hears of the shard's progress."""
    if parts == 1:
        key = part_name(table, 0)
        yield key, TableRows(key, sender, watermark_ms, rows, open_from_ms)
        return
    by_part: list[list[Any]] = [[] for _ in range(parts)]
    for row in rows:
        by_part[part_of(row_id(row), parts)].append(row)
    for part, part_rows in enumerate(by_part):
        key = part_name(table, part)
        yield key, TableRows(key, sender, watermark_ms, part_rows, open_from_ms)


def refuse_archive_in_shard(step: str, version: int) -> SnapshotVersionError:
    """The error for a snapshot from before the tables were gathered across shards."""
    return SnapshotVersionError(
        f"the {step} state in the recovery store is version {version}, from before the "
        "sessions and offers tables were written per hour across shards; finish the back-fill "
        "or stop at a quiet hour and start with a new recovery store (docs/archive.md, "
        "'Upgrading')"
    )
