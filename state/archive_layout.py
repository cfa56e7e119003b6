"""The archive's layout on S3: its tables, their columns, Hive partitions and object names.

The one place the writers (the archive buffers in ``operators``, the Parquet sink), the reader
(``sources/archive.py``, the campaign back-test) and ``flows/sql/ddl.sql`` (checked against this
module by ``tests/unit/test_archive_layout.py``) take the layout from; ``docs/archive.md``
says it in words::

    <root>/<table>/dt=YYYY-MM-DD/hour=HH/<object name>.parquet     (UTC, by event time)
"""

from __future__ import annotations

import functools
import re
import zlib
from datetime import UTC, datetime

import pyarrow as pa

EVENTS_TABLE = "events"
SESSIONS_TABLE = "sessions"
OFFERS_TABLE = "offers"
PARTITION_COLUMNS = ("dt", "hour")
"""The Hive partition columns of every table: the UTC day and hour of the row's time (an event's
time, a session's start, an offer's trigger)."""
HOUR_MS = 3_600_000

TIMESTAMP = pa.timestamp("ms", tz="UTC")
STRINGS = pa.list_(pa.string())
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
        ("identity", pa.string()),
        ("ingest_topic", pa.string()),
        ("ingest_partition", pa.int32()),
        ("ingest_offset", pa.int64()),
        ("ingest_time", TIMESTAMP),
    ]
)
SESSIONS_SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("identity", pa.string()),
        ("customer_id", pa.string()),
        ("absorbed_session_ids", STRINGS),
        ("devices", STRINGS),
        ("start_time", TIMESTAMP),
        ("end_time", TIMESTAMP),
        ("duration_ms", pa.int64()),
        ("event_count", pa.int32()),
        ("screens", STRINGS),
        ("exit_screen", pa.string()),
        ("converted", pa.bool_()),
        ("app", pa.string()),
        ("os", pa.string()),
        ("app_version", pa.string()),
        ("channel", pa.string()),
        ("segment", pa.string()),
        ("event_ids", STRINGS),
    ]
)
OFFERS_SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),
        ("offer_id", pa.string()),
        ("stage", pa.string()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("campaign_id", pa.string()),
        ("campaign_version", pa.int32()),
        ("customer_id", pa.string()),
        ("trigger_event_id", pa.string()),
        ("trigger_time", TIMESTAMP),
        ("decided_at", TIMESTAMP),
        ("send_at", TIMESTAMP),
        ("latency_ms", pa.int64()),
        ("channel", pa.string()),
        ("template", pa.string()),
        ("params", pa.string()),
    ]
)
SCHEMAS = {
    EVENTS_TABLE: EVENTS_SCHEMA,
    SESSIONS_TABLE: SESSIONS_SCHEMA,
    OFFERS_TABLE: OFFERS_SCHEMA,
}
"""Each table's columns in the Parquet objects (the partition columns come from the path)."""


@functools.lru_cache(maxsize=4096)
def _hour_partition(hour: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H")


def hive_partition(time_ms: int) -> tuple[str, str]:
    """The ``dt`` and ``hour`` partition values of a time (epoch ms, UTC)."""
    return _hour_partition(time_ms // HOUR_MS)


def object_path(table: str, dt: str, hour: str, name: str) -> str:
    """An object's path under the archive root: ``<table>/dt=YYYY-MM-DD/hour=HH/<name>.parquet``."""
    return f"{table}/dt={dt}/hour={hour}/{name}.parquet"


OBJECT_PATH = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/[^/]+\.parquet$")
"""Matches the end of an object's path; groups: ``dt``, ``hour``."""
DAY_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})$")
"""Matches a day folder of a table; group: ``dt``."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def events_object_name(source: str, partition: int, first_offset: int) -> str:
    """An ``events`` object: the rows of one input partition from ``first_offset`` on
    (``<topic>-pNNNN-oOFFSET``; a file replay is ``file-<name>-<crc32 of its path>``).
    """
    if source.startswith("file:"):
        path = source.removeprefix("file:")
        base = _UNSAFE.sub("_", path.rsplit("/", 1)[-1])
        source = f"file-{base}-{zlib.crc32(path.encode()):08x}"
    return f"{source}-p{partition:04d}-o{first_offset:015d}"


def part_name(table: str, part: int) -> str:
    """A ``sessions`` or ``offers`` object (one per table part and hour): ``sessions-00``."""
    return f"{table}-{part:02d}"


def late_object_name(name: str, row_id: str) -> str:
    """The object of one row that arrived after its hour's object was final."""
    return f"{name}-late-{_UNSAFE.sub('-', row_id)}"


DEVICE_PREFIX = "device:"
"""An anonymous identity is ``device:<device_id>``."""


def archived_identity(customer_id: str | None, known_customer: str | None, device_id: str) -> str:
    """The ``identity`` column of an ``events`` row: its customer id, else the customer its
    device was known to be logged in as when the job read it, else ``device:<device_id>``.
    """
    return customer_id or known_customer or f"{DEVICE_PREFIX}{device_id}"
