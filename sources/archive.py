"""Reading the archive's ``events`` table back, hour by hour, in event-time order.

The job writes every accepted event to ``<root>/events/dt=YYYY-MM-DD/hour=HH/*.parquet``
(:mod:`state.archive_layout`), partitioned by event time in UTC, late events included. So the hour
partitions of a range, read one after the other and each sorted, give every event of the range
in event-time order with only one hour in memory. ``<root>`` is ``s3://bucket/prefix`` or a
local folder with the same layout.

Rows come back as the job saw them: a :class:`~state.contract.Event` in an
:class:`~state.records.Arrival` with its event time and input position (``ingest_ms`` is 0: the
time it entered Kafka is history, not input).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec
import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from state.archive_layout import DAY_FOLDER, EVENTS_SCHEMA, EVENTS_TABLE, OBJECT_PATH
from state.contract import Event, PropertyValue
from state.records import Arrival

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STRINGS = ("event_id", "event_type", "channel", "customer_id", "device_id", "app",
            "app_version", "os", "os_version", "screen", "element", "form")  # fmt: skip
# What the job read, not what it made of it (identity) or when it entered Kafka (history).
_COLUMNS = [n for n in EVENTS_SCHEMA.names if n not in ("identity", "ingest_time")]
_decode_properties = msgspec.json.Decoder(dict[str, PropertyValue]).decode


class ArchiveError(Exception):
    """The archive cannot be read, or holds nothing in the range asked for."""


@dataclass(frozen=True, slots=True)
class HourPartition:
    """One ``dt=/hour=`` partition of the events table and its objects."""

    dt: date
    hour: int
    files: tuple[str, ...]


@dataclass
class ReadStats:
    """What reading a range found, beside the events it gave."""

    files: int = 0
    rows: int = 0
    """Rows read, before anything was left out."""
    without_customer: int = 0
    """Rows left out because they have no customer id (when only customers' events are wanted)."""
    duplicates: int = 0
    """Rows left out because their event id was already read."""
    first_ms: int | None = None
    last_ms: int | None = None


def day_range(
    present: Sequence[date],
    *,
    days: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> tuple[date, date]:
    """The first and last day to read, both inclusive.

    Args:
        present: the ``dt`` partitions of the archive, ascending.
        days: how many calendar days back from ``until`` (default 7 when ``since`` is not given).
        since: the first day; instead of ``days``.
        until: the last day (default: the newest day present).

    Raises:
        ArchiveError: both ``days`` and ``since`` are given, the range is backwards, or the
            archive has no day at all and ``until`` is not given.
    """
    if days is not None and since is not None:
        raise ArchiveError("give --days or --since, not both")
    if until is None:
        if not present:
            raise ArchiveError("the archive holds no events (no dt= partition)")
        until = present[-1]
    first = since if since is not None else until - timedelta(days=(days or 7) - 1)
    if first > until:
        raise ArchiveError(f"the range is backwards: {first} is after {until}")
    return first, until


class EventArchive:
    """The ``events`` table under an archive root, on S3 or in a local folder."""

    def __init__(self, location: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Open ``location`` (``s3://bucket/prefix`` or a folder).

        ``storage_options`` (s3fs options, e.g. :meth:`state.settings.Settings.storage_options`)
        apply to an ``s3://`` location only.
        """
        self.location = location
        options = dict(storage_options or {}) if location.startswith("s3://") else {}
        self._fs, root = fsspec.core.url_to_fs(location, **options)
        self._root = f"{root.rstrip('/')}/{EVENTS_TABLE}"
        # s3fs instances are shared per options and remember listings: see what is there now.
        self._fs.invalidate_cache()

    @property
    def table_location(self) -> str:
        """Where the events table is, for messages."""
        return f"{self.location.rstrip('/')}/{EVENTS_TABLE}"

    def days(self) -> list[date]:
        """The ``dt`` partitions present, ascending.

        Raises:
            ArchiveError: the location cannot be listed (no such bucket, no access).
        """
        try:
            if not self._fs.isdir(self._root):
                return []
            entries = self._fs.ls(self._root, detail=False)
        except (OSError, ValueError) as exc:  # s3fs reports a missing bucket as an OSError
            raise ArchiveError(f"cannot list {self.table_location}: {exc}") from exc
        found = {DAY_FOLDER.search(str(e).rstrip("/")) for e in entries}
        return sorted(date.fromisoformat(m.group(1)) for m in found if m is not None)

    def hours(self, first: date, last: date) -> list[HourPartition]:
        """The hour partitions from ``first`` to ``last`` (inclusive) that hold objects."""
        by_hour: dict[tuple[date, int], list[str]] = {}
        for day in self.days():
            if not first <= day <= last:
                continue
            for path in self._fs.find(f"{self._root}/dt={day.isoformat()}"):
                match = OBJECT_PATH.search(str(path))
                if match is not None:
                    key = (date.fromisoformat(match.group(1)), int(match.group(2)))
                    by_hour.setdefault(key, []).append(str(path))
        return [
            HourPartition(dt, hour, tuple(sorted(files)))
            for (dt, hour), files in sorted(by_hour.items())
        ]

    def read(
        self,
        hours: Sequence[HourPartition],
        *,
        customers_only: bool = False,
        batch_rows: int = 65_536,
        stats: ReadStats | None = None,
        on_file: Callable[[int], None] | None = None,
    ) -> Iterator[list[Arrival]]:
        """The events of each hour partition, sorted by (event time, event id), one list per hour.

        An event id read before (in this hour or the one before: a repeat carries the same event
        time, and the job drops repeats within its dedupe window of an hour) is left out.

        Args:
            hours: the partitions, ascending (as :meth:`hours` gives them).
            customers_only: leave out events without a customer id.
            batch_rows: rows decoded at a time.
            stats: counts what was read and left out.
            on_file: called with the rows of each object once it is read.
        """
        stats = stats if stats is not None else ReadStats()
        previous: set[str] = set()
        for partition in hours:
            arrivals: list[Arrival] = []
            for path in partition.files:
                rows = self._read_file(path, customers_only, batch_rows, stats, arrivals)
                stats.files += 1
                if on_file is not None:
                    on_file(rows)
            arrivals.sort(key=_order)
            seen: set[str] = set()
            unique = []
            for arrival in arrivals:
                event_id = arrival.event.event_id
                if event_id in seen or event_id in previous:
                    stats.duplicates += 1
                    continue
                seen.add(event_id)
                unique.append(arrival)
            previous = seen
            if unique:
                if stats.first_ms is None:
                    stats.first_ms = unique[0].event_ms
                stats.last_ms = unique[-1].event_ms
            yield unique

    def _read_file(
        self,
        path: str,
        customers_only: bool,
        batch_rows: int,
        stats: ReadStats,
        into: list[Arrival],
    ) -> int:
        read = 0
        try:
            with self._fs.open(path, "rb") as handle:
                parquet = pq.ParquetFile(handle)
                names = set(parquet.schema_arrow.names)
                columns = [c for c in _COLUMNS if c in names]
                for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                    read += batch.num_rows
                    kept = batch
                    if customers_only:
                        kept = batch.filter(pc.is_valid(batch.column("customer_id")))
                        stats.without_customer += batch.num_rows - kept.num_rows
                    into.extend(arrivals_of(kept))
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveError(f"cannot read {path}: {exc}") from exc
        stats.rows += read
        return read


def arrivals_of(batch: pa.RecordBatch) -> list[Arrival]:
    """Rows of the events table as arrivals (a column other than ``event_time`` may be missing)."""
    names = set(batch.schema.names)

    def column(name: str, missing: object = None) -> list[Any]:
        if name in names:
            values: list[Any] = batch.column(name).to_pylist()
            return values
        return [missing] * batch.num_rows

    strings = [column(name) for name in _STRINGS]
    times: list[int] = batch.column("event_time").cast(pa.int64()).to_pylist()
    positions = zip(
        column("ingest_topic", ""), column("ingest_partition", 0), column("ingest_offset", 0),
        strict=True,
    )  # fmt: skip
    result = []
    for values, event_ms, text, (topic, partition, offset) in zip(
        zip(*strings, strict=True), times, column("properties"), positions, strict=True
    ):
        fields = dict(zip(_STRINGS, values, strict=True))
        event = Event(
            **fields,
            event_time=_EPOCH + timedelta(milliseconds=event_ms),
            properties=_decode_properties(text) if text else {},
        )
        result.append(Arrival(event, event_ms, topic or "", partition or 0, offset or 0, 0))
    return result


def _order(arrival: Arrival) -> tuple[int, str]:
    return arrival.event_ms, arrival.event.event_id
