"""Parquet archive on S3: one object per :class:`~state.records.ArchiveObject`, one PUT each.

Objects are built in memory and uploaded whole, so a reader never sees half an object, and a
rewrite of the same name after a replay replaces it.
"""

from __future__ import annotations

import contextlib
import operator
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import s3fs
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from clickstream_native import bytewax_worker

from state.archive_layout import (
    EVENTS_SCHEMA,
    EVENTS_TABLE,
    OFFERS_SCHEMA,
    OFFERS_TABLE,
    SESSIONS_SCHEMA,
    SESSIONS_TABLE,
    TIMESTAMP,
    archived_identity,
)
from state.outage import DEFAULT_LIMIT_S, Outage, redact, s3_unreachable
from state.records import ArchiveObject, Arrival

ROW_GROUP_ROWS = 128 * 1024

_encode_json = msgspec.json.Encoder().encode


_STRING_COLUMNS = (
    "event_id", "event_type", "channel", "customer_id", "device_id", "app", "app_version",
    "os", "os_version", "screen", "element", "form",
)  # fmt: skip
# Dictionary encoding pays off only where values repeat; ids and JSON would just cost time.
DICTIONARY_COLUMNS = [
    "event_type", "channel", "app", "app_version", "os", "os_version", "screen", "element",
    "form", "ingest_topic", "stage", "outcome", "reason", "campaign_id",
]  # fmt: skip


_event_of = operator.attrgetter("event")
_event_strings = operator.attrgetter(*_STRING_COLUMNS)
_arrival_columns = operator.attrgetter(
    "event_ms", "source", "partition", "offset", "ingest_ms", "known_customer"
)


def events_table(rows: Sequence[Arrival]) -> pa.Table:
    """The ``events`` table of a list of accepted events (one array built per column)."""
    if not rows:
        return EVENTS_SCHEMA.empty_table()
    # Columns by transposing attrgetter tuples: the per-row work stays in C, which matters
    # because this runs in the upload threads, competing with the stream for the GIL.
    events = list(map(_event_of, rows))
    string = pa.string()
    columns = dict(
        zip(_STRING_COLUMNS, zip(*map(_event_strings, events), strict=True), strict=True)
    )
    arrays: dict[str, pa.Array] = {
        name: pa.array(column, type=string) for name, column in columns.items()
    }
    event_ms, sources, partitions, offsets, ingest_ms, known = zip(
        *map(_arrival_columns, rows), strict=True
    )
    arrays["event_time"] = pa.array(event_ms, type=TIMESTAMP)
    arrays["properties"] = pa.array(
        [_encode_json(e.properties) if e.properties else None for e in events], type=string
    )
    arrays["identity"] = pa.array(
        [
            archived_identity(customer, known_customer, device)
            for customer, known_customer, device in zip(
                columns["customer_id"], known, columns["device_id"], strict=True
            )
        ],
        type=string,
    )
    arrays["ingest_topic"] = pa.array(sources, type=string)
    arrays["ingest_partition"] = pa.array(partitions, type=pa.int32())
    arrays["ingest_offset"] = pa.array(offsets, type=pa.int64())
    arrays["ingest_time"] = pa.array(ingest_ms, type=TIMESTAMP)
    return pa.Table.from_arrays([arrays[f.name] for f in EVENTS_SCHEMA], schema=EVENTS_SCHEMA)


_SESSION_FIELDS = {
    "start_time": "start_ms",
    "end_time": "end_ms",
}


_session_columns = operator.attrgetter(
    *(_SESSION_FIELDS.get(field.name, field.name) for field in SESSIONS_SCHEMA)
)


def sessions_table(records: Sequence[Any]) -> pa.Table:
    """The ``sessions`` table of closed session records."""
    if not records:
        return SESSIONS_SCHEMA.empty_table()
    columns = zip(*map(_session_columns, records), strict=True)
    arrays = [
        pa.array(column, type=field.type)
        for field, column in zip(SESSIONS_SCHEMA, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=SESSIONS_SCHEMA)


_OFFER_FIELDS = {
    "trigger_time": "trigger_ms",
    "decided_at": "decided_at_ms",
    "send_at": "send_at_ms",
}


def offers_table(rows: Sequence[Any]) -> pa.Table:
    """The ``offers`` table of offer decisions (:class:`~offers.archive.OfferRow`)."""
    columns = [
        pa.array([getattr(r, _OFFER_FIELDS.get(f.name, f.name)) for r in rows], type=f.type)
        for f in OFFERS_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=OFFERS_SCHEMA)


TABLES = {EVENTS_TABLE: events_table, SESSIONS_TABLE: sessions_table, OFFERS_TABLE: offers_table}


def parquet_bytes(table: pa.Table) -> bytes:
    """Serialize a table as zstd-compressed Parquet."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[c for c in DICTIONARY_COLUMNS if c in table.column_names],
        row_group_size=ROW_GROUP_ROWS,
        coerce_timestamps="ms",
        allow_truncated_timestamps=False,
    )
    return bytes(sink.getvalue().to_pybytes())


class ArchiveWriter:
    """Writes archive objects under ``s3://bucket/prefix/``."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        storage_options: dict[str, Any],
        outage_limit_s: float = DEFAULT_LIMIT_S,
    ) -> None:
        """Connect to the bucket, creating it when it does not exist; an outage of S3 of up to
        ``outage_limit_s`` is waited out (see :mod:`state.outage`).
        """
        # Fail fast (two attempts, short connect timeout) and let the outage wait with its
        # backoff and say so: s3fs's own retries would hide a minute's outage in silence.
        config = {
            **storage_options.get("config_kwargs", {}),
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 60,
        }
        self._fs = s3fs.S3FileSystem(
            **{**storage_options, "config_kwargs": config}, skip_instance_cache=True
        )
        self._fs.retries = 1
        self._root = f"{bucket}/{prefix.strip('/')}" if prefix.strip("/") else bucket
        endpoint = storage_options.get("client_kwargs", {}).get("endpoint_url")
        where = redact(endpoint) if endpoint else "AWS S3"
        self._outage = Outage("S3", where, s3_unreachable, outage_limit_s)
        self._outage.call(lambda: self._ensure_bucket(bucket))

    def _ensure_bucket(self, bucket: str) -> None:
        # ``exists`` answers False when S3 cannot be reached; ``mkdir`` then raises the outage's
        # error (waited out), or finds the bucket there after all.
        if self._fs.exists(bucket):
            return
        with contextlib.suppress(FileExistsError):
            self._fs.mkdir(bucket)

    def write(self, obj: ArchiveObject) -> str:
        """Upload one object; return its path (without the ``s3://`` scheme)."""
        path = f"{self._root}/{obj.relative_path}"
        data = parquet_bytes(TABLES[obj.table](obj.rows))
        self._outage.call(lambda: self._fs.pipe_file(path, data))
        return path


class _ArchivePartition(StatefulSinkPartition[list[ArchiveObject], None]):
    """Encodes and uploads in background threads; the epoch's snapshot waits for them.

    Bytewax commits an epoch only after every snapshot of it is taken, so waiting in
    :meth:`snapshot` means no epoch is recorded as done while its objects are still in flight:
    a crash before the upload finishes replays the epoch and rewrites them. Each object name
    always goes to the same single-thread lane, so two writes of one name land in order. The
    connection and the lanes open with the first object: a partition no worker writes to (see
    :data:`ARCHIVE_PARTITIONS`) costs nothing.
    """

    def __init__(self, writer: Callable[[], ArchiveWriter], lanes: int) -> None:
        self._open_writer = writer
        self._lane_count = lanes
        self._writer: ArchiveWriter | None = None
        self._lanes: list[ThreadPoolExecutor] = []
        self._pending: list[Future[str]] = []

    def write_batch(self, values: list[list[ArchiveObject]]) -> None:
        self._pending = [f for f in self._pending if not f.done() or _raise_if_failed(f)]
        for objects in values:
            for obj in objects:
                if self._writer is None:
                    self._writer = self._open_writer()
                    self._lanes = [
                        ThreadPoolExecutor(1, thread_name_prefix="archive")
                        for _ in range(self._lane_count)
                    ]
                lane = self._lanes[zlib.crc32(obj.relative_path.encode()) % len(self._lanes)]
                self._pending.append(lane.submit(self._writer.write, obj))

    def snapshot(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        self.snapshot()
        for lane in self._lanes:
            lane.shutdown(wait=True)


def _raise_if_failed(future: Future[str]) -> bool:
    future.result()
    return False


ARCHIVE_PARTITIONS = ("archive", *(f"archive-{n:02d}" for n in range(1, 32)))
"""The archive sink's partitions, in sorted order. Every worker lists them all, and Bytewax then
makes worker ``i % workers`` the primary of the i-th (it deals partitions out in order, each to
the worker with the fewest so far, the lowest index first; checked against Bytewax in
``tests/unit/test_bytewax_routing.py``). Objects go to their own worker's partition, so that on a
cluster no object crosses to another process; one process uses the first, named as the single
partition the sink had before, so an older recovery store resumes."""


def archive_partition(item_key: str, workers: int) -> int:
    """The index in :data:`ARCHIVE_PARTITIONS` of the partition of the worker Bytewax runs
    ``item_key``'s state on (with more workers than partitions, some objects cross).
    """
    return bytewax_worker(item_key, workers) % len(ARCHIVE_PARTITIONS)


class ParquetArchiveSink(FixedPartitionedSink[list[ArchiveObject], None]):
    """Writes the archive objects decided upstream; it holds nothing past an epoch."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        storage_options: dict[str, Any],
        lanes: int = 2,
        writer: type[ArchiveWriter] = ArchiveWriter,
        workers: int = 1,
        outage_limit_s: float = DEFAULT_LIMIT_S,
    ) -> None:
        """Create the sink for ``s3://bucket/prefix`` with ``lanes`` upload threads.

        ``writer`` is the class that encodes and uploads one object (the benchmark times it);
        ``workers`` is the number of Bytewax workers of the whole cluster.
        """
        self._workers = workers
        self._outage_limit_s = outage_limit_s
        self._bucket = bucket
        self._prefix = prefix
        self._storage_options = storage_options
        self._lanes = lanes
        self._writer = writer

    def list_parts(self) -> list[str]:
        """Every partition, on every worker (see :data:`ARCHIVE_PARTITIONS`).

        The same names whatever the number of processes: Bytewax keeps a (``None``) snapshot per
        partition written to and cannot resume one no worker lists. Their :meth:`snapshot` is
        the epoch's barrier for the uploads, so a sink without snapshots (a ``DynamicSink``) is
        no option either.
        """
        return list(ARCHIVE_PARTITIONS)

    def part_fn(self, item_key: str) -> int:
        """The partition whose primary is the worker the item comes from (see
        :func:`archive_partition`).
        """
        return archive_partition(item_key, self._workers)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ArchivePartition:
        """A partition; it connects to S3 and starts its upload lanes on its first object."""
        return _ArchivePartition(
            lambda: self._writer(
                self._bucket, self._prefix, self._storage_options, self._outage_limit_s
            ),
            self._lanes,
        )
