"""Parquet archive on S3: one object per :class:`~state.records.ArchiveObject`, one PUT each.

Objects are built in memory and uploaded whole, so a reader never sees half an object, and a
rewrite of the same name after a replay replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import s3fs
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from state.records import ArchiveObject, Arrival

TIMESTAMP = pa.timestamp("ms", tz="UTC")
EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", TIMESTAMP),
        ("event_type", pa.string()),
        ("channel", pa.string()),
        ("customer_id", pa.string()),
        ("device_id", pa.string()),
        ("app", pa.string()),
        ("app_version", pa.string()),
        ("os", pa.string()),
        ("os_version", pa.string()),
        ("screen", pa.string()),
        ("element", pa.string()),
        ("form", pa.string()),
        ("properties", pa.string()),
        ("ingest_topic", pa.string()),
        ("ingest_partition", pa.int32()),
        ("ingest_offset", pa.int64()),
        ("ingest_time", TIMESTAMP),
    ]
)
ROW_GROUP_ROWS = 128 * 1024

_encode_json = msgspec.json.Encoder().encode


def events_table(rows: Sequence[Arrival]) -> pa.Table:
    """The ``events`` table of a list of accepted events (columns built in one pass each)."""
    events = [row.event for row in rows]
    columns: dict[str, Any] = {
        "event_id": [e.event_id for e in events],
        "event_time": [row.event_ms for row in rows],
        "event_type": [e.event_type for e in events],
        "channel": [e.channel for e in events],
        "customer_id": [e.customer_id for e in events],
        "device_id": [e.device_id for e in events],
        "app": [e.app for e in events],
        "app_version": [e.app_version for e in events],
        "os": [e.os for e in events],
        "os_version": [e.os_version for e in events],
        "screen": [e.screen for e in events],
        "element": [e.element for e in events],
        "form": [e.form for e in events],
        "properties": [
            _encode_json(e.properties).decode() if e.properties else None for e in events
        ],
        "ingest_topic": [row.source for row in rows],
        "ingest_partition": [row.partition for row in rows],
        "ingest_offset": [row.offset for row in rows],
        "ingest_time": [row.ingest_ms for row in rows],
    }
    return pa.Table.from_pydict(columns, schema=EVENTS_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """Serialize a table as zstd-compressed Parquet."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        coerce_timestamps="ms",
        allow_truncated_timestamps=False,
    )
    return bytes(sink.getvalue().to_pybytes())


class ArchiveWriter:
    """Writes archive objects under ``s3://bucket/prefix/``."""

    def __init__(self, bucket: str, prefix: str, storage_options: dict[str, Any]) -> None:
        """Connect to the bucket, creating it when it does not exist."""
        self._fs = s3fs.S3FileSystem(**storage_options)
        self._root = f"{bucket}/{prefix.strip('/')}" if prefix.strip("/") else bucket
        if not self._fs.exists(bucket):
            self._fs.mkdir(bucket)

    def write(self, obj: ArchiveObject) -> str:
        """Upload one object; return its path (without the ``s3://`` scheme)."""
        path = f"{self._root}/{obj.relative_path}"
        self._fs.pipe_file(path, parquet_bytes(events_table(obj.rows)))
        return path


class _ArchivePartition(StatelessSinkPartition[list[ArchiveObject]]):
    def __init__(self, writer: ArchiveWriter) -> None:
        self._writer = writer

    def write_batch(self, items: list[list[ArchiveObject]]) -> None:
        for objects in items:
            for obj in objects:
                self._writer.write(obj)


class ParquetArchiveSink(DynamicSink[list[ArchiveObject]]):
    """Writes the archive objects decided upstream; it buffers nothing itself."""

    def __init__(self, bucket: str, prefix: str, storage_options: dict[str, Any]) -> None:
        """Create the sink for ``s3://bucket/prefix``."""
        self._bucket = bucket
        self._prefix = prefix
        self._storage_options = storage_options

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ArchivePartition:
        """Open this worker's S3 connection."""
        return _ArchivePartition(ArchiveWriter(self._bucket, self._prefix, self._storage_options))
