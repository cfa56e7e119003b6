"""flows/sql/ddl.sql declares the tables the job writes: same tables, columns, types, partitions and
locations as the layout module the writers and the reader use."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from state.archive_layout import (
    OBJECT_PATH,
    PARTITION_COLUMNS,
    SCHEMAS,
    archived_identity,
    events_object_name,
    hive_partition,
    late_object_name,
    object_path,
    part_name,
)

DDL = (Path(__file__).resolve().parents[2] / "flows" / "sql" / "ddl.sql").read_text()
TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS \{catalog\}\.\{schema\}\.(\w+) \((.*?)\)\s*WITH \((.*?)\);",
    re.S,
)


def _trino_type(arrow: pa.DataType) -> str:
    if pa.types.is_list(arrow):
        return f"array({_trino_type(arrow.value_type)})"
    if pa.types.is_timestamp(arrow):
        assert arrow.unit == "ms" and arrow.tz == "UTC"
        return "timestamp(3)"
    names = {pa.string(): "varchar", pa.int32(): "integer", pa.int64(): "bigint"}
    names[pa.bool_()] = "boolean"
    return names[arrow]


def _declared() -> dict[str, tuple[list[tuple[str, str]], str]]:
    tables = {}
    for name, body, options in TABLE.findall(DDL):
        columns = [tuple(line.strip().rstrip(",").split(" ", 1)) for line in body.splitlines()]
        tables[name] = ([(c[0], c[1]) for c in columns if c[0]], options)
    return tables


def test_the_ddl_declares_every_table_as_the_writers_write_it() -> None:
    declared = _declared()
    assert set(declared) == set(SCHEMAS)
    for table, schema in SCHEMAS.items():
        columns, options = declared[table]
        expected = [(f.name, _trino_type(f.type)) for f in schema]
        expected += [(c, "varchar") for c in PARTITION_COLUMNS]
        assert columns == expected, table
        assert f"external_location = '{{location}}/{table}'" in options
        partitioned = ", ".join(f"'{c}'" for c in PARTITION_COLUMNS)
        assert f"partitioned_by = ARRAY[{partitioned}]" in options


def test_object_paths_are_hive_partitions_of_utc_hours_the_reader_parses() -> None:
    # 2026-01-15 23:59:59.999 UTC and the next millisecond: two days, two hours.
    before, after = 1_768_521_599_999, 1_768_521_600_000
    assert hive_partition(before) == ("2026-01-15", "23")
    assert hive_partition(after) == ("2026-01-16", "00")
    path = object_path("sessions", *hive_partition(after), part_name("sessions", 3))
    assert path == "sessions/dt=2026-01-16/hour=00/sessions-03.parquet"
    match = OBJECT_PATH.search(f"bucket/prefix/{path}")
    assert match is not None and match.groups() == ("2026-01-16", "00")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("bank.events", "bank.events-p0003-o000000000050000"),
        ("file:/data/day 1.jsonl", "file-day_1.jsonl-{crc}-p0003-o000000000050000"),
    ],
)
def test_events_objects_are_named_by_their_input_position(source: str, expected: str) -> None:
    import zlib

    crc = f"{zlib.crc32(b'/data/day 1.jsonl'):08x}"
    assert events_object_name(source, 3, 50_000) == expected.format(crc=crc)


def test_a_late_row_gets_a_safe_name_of_its_own() -> None:
    assert late_object_name("offers-00", "a/b:release") == "offers-00-late-a-b-release"


def test_the_identity_column_prefers_the_customer_then_the_login_then_the_device() -> None:
    assert archived_identity("C1", "C2", "D1") == "C1"
    assert archived_identity(None, "C2", "D1") == "C2"
    assert archived_identity(None, None, "D1") == "device:D1"
