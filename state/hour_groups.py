"""Rows of one archive table held in recoverable state by hour until written as whole objects.

:class:`HourGroups` is the buffer of the ``sessions`` table (closed sessions, by the hour of
their first event; :mod:`operators.session_archive`) and of the ``offers`` table (offer
decisions, by the hour of their trigger; :mod:`offers.archive`). It lives in a keyed
step of its own, fed by every journeys or offers shard (:class:`TableRows`), so that an hour of
the table is one object per table part, not one per shard.

A group's object is named by the table part and the hour, and rewritten whole whenever it has
new rows (at most every ``max_age_s``), so a replay rewrites the same object with the same rows
and never leaves a row twice. A group leaves the state once the senders' progress is past its
hour by ``retire_ms`` (and, for a table that says so, once it expects no more rows); a row
arriving for a group that has left gets an object of its own, named by the row's id.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import msgspec

from state.archive_layout import HOUR_MS, hive_partition, late_object_name
from state.moments import ENDLESS, NEVER
from state.records import ArchiveObject

R = TypeVar("R")


class HourGroups(ABC, Generic[R]):
    """Groups of one table part's rows by hour, and when to write which object.

    Args:
        table: the archive table.
        max_age_s: a group with new rows is rewritten at least this often (wall clock).
        retire_ms: a group is final this long after its hour (input progress).
        hour_of: a row's time (epoch ms) that places it in an hour partition.
        row_id: a row's unique id (sorts the rows of an object, names a late row's object).
    """

    def __init__(
        self,
        table: str,
        max_age_s: float,
        retire_ms: int,
        hour_of: Callable[[R], int],
        row_id: Callable[[R], str],
    ) -> None:
        """A buffer for ``table``; the attributes above say what each argument is."""
        self._table = table
        self._max_age_s = max_age_s
        self._retire_ms = retire_ms
        self._hour_of = hour_of
        self._row_id = row_id
        self._groups: dict[int, list[R]] = {}
        self._retired_below = NEVER
        self._dirty_since: dict[int, float] = {}
        self._shard = ""

    def _restore(self, groups: dict[int, list[R]], retired_below: int, shard: str) -> None:
        self._groups = {h: list(rows) for h, rows in groups.items()}
        self._retired_below = retired_below
        self._shard = shard

    @property
    def buffered_rows(self) -> int:
        """Rows held in state."""
        return sum(len(rows) for rows in self._groups.values())

    def mark_all_dirty(self, now: float) -> None:
        """After a restore: the groups' objects may predate the crash."""
        for hour in self._groups:
            self._dirty_since.setdefault(hour, now)

    def add(
        self, rows: Iterable[R], shard: str, progress_ms: int, now: float
    ) -> list[ArchiveObject]:
        """Buffer rows; return the objects to write now (groups that are final).

        ``progress_ms`` is how far the input has got (event time): a group is final once it is
        past the group's hour by ``retire_ms`` and :meth:`_may_retire` agrees.
        """
        self._shard = shard or self._shard
        objects: list[ArchiveObject] = []
        for row in rows:
            hour = self._hour_of(row) // HOUR_MS
            group = self._groups.get(hour)
            if group is None:
                if hour < self._retired_below:
                    name = late_object_name(self._name(), self._row_id(row))
                    objects.append(self._object(hour, [row], name))
                    continue
                group = self._groups[hour] = []
            group.append(row)
            self._added(hour, row)
            self._dirty_since.setdefault(hour, now)
        for hour in sorted(self._groups):
            if (hour + 1) * HOUR_MS + self._retire_ms > progress_ms:
                break
            if not self._may_retire(hour, progress_ms):
                continue
            objects.extend(self._write(hour))
            del self._groups[hour]
            self._retired(hour)
            self._retired_below = max(self._retired_below, hour + 1)
        return objects

    def _added(self, hour: int, row: R) -> None:
        """Hook: a row joined the group of ``hour``."""

    def _may_retire(self, hour: int, progress_ms: int) -> bool:
        """Hook: whether the group of ``hour``, past its hour by ``retire_ms``, is final."""
        return True

    def _retired(self, hour: int) -> None:
        """Hook: the group of ``hour`` has left the state."""

    def due(self, now: float) -> list[ArchiveObject]:
        """Groups whose unwritten rows are older than the maximum age."""
        objects: list[ArchiveObject] = []
        for hour, since in sorted(self._dirty_since.items()):
            if now - since >= self._max_age_s:
                objects.extend(self._write(hour))
        return objects

    def flush_all(self) -> list[ArchiveObject]:
        """Every group with unwritten rows."""
        objects: list[ArchiveObject] = []
        for hour in sorted(self._dirty_since):
            objects.extend(self._write(hour))
        return objects

    def next_due(self) -> float | None:
        """When the oldest unwritten rows become due (wall-clock seconds)."""
        return min(self._dirty_since.values()) + self._max_age_s if self._dirty_since else None

    def _name(self) -> str:
        return self._shard or self._table

    def _write(self, hour: int) -> list[ArchiveObject]:
        self._dirty_since.pop(hour, None)
        rows = self._groups.get(hour)
        if not rows:
            return []
        return [self._object(hour, sorted(rows, key=self._row_id), self._name())]

    @abstractmethod
    def snapshot(self) -> bytes:
        """An immutable copy of the state (each table's own record type)."""

    def _object(self, hour: int, rows: list[R], name: str) -> ArchiveObject:
        dt, hour_label = hive_partition(hour * HOUR_MS)
        return ArchiveObject(self._table, dt, hour_label, name, list(rows))


class TableRows(msgspec.Struct, frozen=True, gc=False):
    """A shard's new rows for one part of an archive table, and how far the shard has got."""

    part: str
    """The table part's key (:func:`~state.archive_layout.part_name`), which names its objects."""
    sender: str
    """The sending shard's key."""
    watermark_ms: int
    """The input progress (event time) the sender had acted on."""
    rows: list[Any]
    open_from_ms: int = ENDLESS
    """No row for an hour before this is still to come from the sender beyond the watermark's
    allowance (a journeys shard: the start of the earliest session it holds open)."""


def part_of(row_id: str, parts: int) -> int:
    """Which part of a table a row goes to, by a stable hash of its id."""
    return 0 if parts == 1 else zlib.crc32(row_id.encode()) % parts
