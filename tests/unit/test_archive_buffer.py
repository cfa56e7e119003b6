"""Archive buffering: deterministic objects by input position, age-based writes, restore."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.archive import ArchiveBuffer
from state.archive_layout import events_object_name as object_stem
from state.records import ArchiveObject
from tests.support.events import arrival


def rows_by_name(objects: list[ArchiveObject]) -> dict[str, list[int]]:
    return {o.relative_path: [r.offset for r in o.rows] for o in objects}


def test_a_chunk_is_written_once_the_input_has_moved_past_it() -> None:
    buffer = ArchiveBuffer(chunk_rows=10, max_age_s=60)
    assert buffer.add([arrival(f"e{i}", i, offset=i) for i in range(12)], now=0) == []
    objects = buffer.add([arrival(f"e{i}", i, offset=i) for i in range(12, 16)], now=1)
    assert rows_by_name(objects) == {
        "events/dt=2026-01-15/hour=08/bank.events-p0000-o000000000000000.parquet": list(range(10))
    }
    assert buffer.buffered_rows == 6


def test_an_open_chunk_is_rewritten_whole_when_its_rows_get_old() -> None:
    buffer = ArchiveBuffer(chunk_rows=100, max_age_s=30)
    buffer.add([arrival("a", 0, offset=0)], now=0)
    assert buffer.due(now=29) == []
    first = buffer.due(now=30)
    buffer.add([arrival("b", 1, offset=1)], now=31)
    assert buffer.next_due() == 61
    second = buffer.due(now=61)
    assert [o.name for o in first] == [o.name for o in second]
    assert [r.offset for r in second[0].rows] == [0, 1]


def test_rows_land_in_the_hour_partition_of_their_event_time() -> None:
    buffer = ArchiveBuffer(chunk_rows=100, max_age_s=30)
    buffer.add([arrival("a", 3599, offset=0), arrival("b", 3600, offset=1)], now=0)
    objects = buffer.flush_all()
    assert sorted((o.dt, o.hour, o.name) for o in objects) == [
        ("2026-01-15", "08", object_stem("bank.events", 0, 0)),
        ("2026-01-15", "09", object_stem("bank.events", 0, 0)),
    ]


def test_file_sources_get_safe_stable_names() -> None:
    name = object_stem("file:/data/in put/day 1.jsonl.gz", 0, 5)
    assert "/" not in name and " " not in name
    assert name == object_stem("file:/data/in put/day 1.jsonl.gz", 0, 5)
    assert name != object_stem("file:/other/day 1.jsonl.gz", 0, 5)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 50), st.integers(1, 40), st.integers(0, 199))
def test_a_replay_from_any_snapshot_ends_with_the_same_objects(
    chunk_rows: int, batch: int, crash_at: int
) -> None:
    """Whatever the batching and the crash point, the last write of every name is the same."""
    rows = [arrival(f"e{i}", i * 7, offset=i) for i in range(200)]

    def run(buffer: ArchiveBuffer, start: int, final: dict[str, list[int]]) -> None:
        for i in range(start, len(rows), batch):
            final.update(rows_by_name(buffer.add(rows[i : i + batch], now=i)))
        final.update(rows_by_name(buffer.flush_all()))

    clean: dict[str, list[int]] = {}
    run(ArchiveBuffer(chunk_rows, 1e9), 0, clean)

    crashed: dict[str, list[int]] = {}
    first = ArchiveBuffer(chunk_rows, 1e9)
    cut = (crash_at // batch) * batch
    for i in range(0, cut, batch):
        crashed.update(rows_by_name(first.add(rows[i : i + batch], now=i)))
    snapshot = first.snapshot()
    # Before the crash, the doomed run wrote some more objects that the resume must overwrite.
    for i in range(cut, len(rows), batch):
        crashed.update(rows_by_name(first.add(rows[i : i + batch], now=i)))
    resumed = ArchiveBuffer(chunk_rows, 1e9, snapshot)
    resumed.mark_all_dirty(now=0)
    run(resumed, cut, crashed)
    assert crashed == clean
    assert sorted(o for offsets in clean.values() for o in offsets) == list(range(200))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 50), st.integers(1, 40), st.lists(st.integers(0, 199), max_size=8))
def test_snapshots_taken_every_epoch_restore_every_buffered_row(
    chunk_rows: int, batch: int, epochs: list[int]
) -> None:
    """Each snapshot re-uses the bytes of the rows already encoded; a restore from any of them
    holds exactly the rows buffered at that moment."""
    rows = [arrival(f"e{i}", i * 7, offset=i) for i in range(200)]
    buffer = ArchiveBuffer(chunk_rows, 1e9)
    for i in range(0, len(rows), batch):
        buffer.add(rows[i : i + batch], now=i)
        if any(i <= e < i + batch for e in epochs) or i % 3 == 0:
            restored = ArchiveBuffer(chunk_rows, 1e9, buffer.snapshot())
            assert rows_by_name(restored.flush_all()) == rows_by_name(
                ArchiveBuffer(chunk_rows, 1e9, _plain_snapshot(buffer)).flush_all()
            )
            assert restored.buffered_rows == buffer.buffered_rows


def _plain_snapshot(buffer: ArchiveBuffer) -> bytes:
    """The same state in version 1's format (every chunk one list): the migration reads it."""
    import msgspec

    from operators.archive import _ArchiveSnapshotV1

    return msgspec.msgpack.encode(
        _ArchiveSnapshotV1(
            1,
            {index: list(rows) for index, rows in buffer._chunks.items()},
            buffer._retired_below,
            buffer._max_offset,
        )
    )
