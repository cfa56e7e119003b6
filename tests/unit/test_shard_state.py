"""Dedupe, watermark and late events of one shard."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.shard_state import MINUTE_MS, Shard, ShardConfig
from state.snapshots import SnapshotVersionError, encode_snapshot
from tests.support.events import BASE, arrival

CONFIG = ShardConfig(allowed_lateness_ms=300_000, dedupe_window_ms=3_600_000, dedupe_max_ids=1000)
BASE_MINUTE = int(BASE.timestamp() * 1000)


def test_a_repeated_event_id_counts_once_even_across_batches() -> None:
    shard = Shard(CONFIG)
    first = shard.process([arrival("a", 0), arrival("b", 1), arrival("a", 2)])
    second = shard.process([arrival("b", 3, offset=9)])
    assert first.pipeline == {"valid": 2, "duplicates": 1, "late": 0}
    assert second.pipeline == {"valid": 0, "duplicates": 1, "late": 0}
    assert first.minute_counts == {BASE_MINUTE: {"click": 2}}
    assert second.archive_rows == {}


def test_an_event_older_than_the_watermark_is_late_archived_but_not_counted() -> None:
    shard = Shard(CONFIG)
    shard.process([arrival("new", 600)])  # watermark = 08:10 - 5 min = 08:05
    result = shard.process([arrival("late", 200, offset=1), arrival("ok", 301, offset=2)])
    assert result.pipeline == {"valid": 2, "duplicates": 0, "late": 1}
    assert result.minute_counts == {BASE_MINUTE + 5 * MINUTE_MS: {"click": 1}}
    archived = [a.event.event_id for a in result.archive_rows["bank.events#0"]]
    assert archived == ["late", "ok"]


def test_late_events_do_not_move_the_watermark() -> None:
    shard = Shard(CONFIG)
    shard.process([arrival("a", 600)])
    shard.process([arrival("b", 10)])
    assert shard.watermark_ms == BASE_MINUTE + 600_000 - 300_000


def test_ids_older_than_the_dedupe_window_are_forgotten() -> None:
    shard = Shard(ShardConfig(300_000, dedupe_window_ms=600_000, dedupe_max_ids=1000))
    shard.process([arrival(f"e{i}", i * 60) for i in range(30)])
    # 29 minutes seen, window 10 minutes: only the last ~11 minutes are remembered.
    assert 10 <= shard.remembered_ids <= 12


def test_the_dedupe_memory_is_capped() -> None:
    shard = Shard(ShardConfig(300_000, dedupe_window_ms=10**9, dedupe_max_ids=1000))
    shard.process([arrival(f"e{i}", i) for i in range(5000)])
    assert shard.remembered_ids <= 1000
    # The newest ids are the ones kept.
    assert shard.process([arrival("e4999", 4999)]).pipeline["duplicates"] == 1


def test_a_snapshot_restores_the_same_decisions() -> None:
    shard = Shard(CONFIG)
    shard.process([arrival("a", 600), arrival("b", 10)])
    restored = Shard(CONFIG, shard.snapshot())
    result = restored.process([arrival("a", 600), arrival("c", 100)])
    assert result.pipeline == {"valid": 1, "duplicates": 1, "late": 1}


def test_a_snapshot_of_an_unknown_version_is_refused() -> None:
    from operators.shard_state import ShardSnapshot

    old = encode_snapshot(ShardSnapshot(version=0, max_event_ms=0, seen={}))
    with pytest.raises(SnapshotVersionError, match="version 0"):
        Shard(CONFIG, old)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3600)), min_size=1, max_size=200),
    st.integers(1, 20),
)
def test_dedupe_and_lateness_match_a_reference(events: list[tuple[int, int]], cut: int) -> None:
    """Any order, any batching: counted + late + duplicates add up as the definitions say."""
    shard = Shard(CONFIG)
    arrivals = [
        arrival(f"e{ident}", seconds, offset=i) for i, (ident, seconds) in enumerate(events)
    ]
    totals = {"valid": 0, "duplicates": 0, "late": 0}
    counted = 0
    for start in range(0, len(arrivals), cut):
        result = shard.process(arrivals[start : start + cut])
        for name, n in result.pipeline.items():
            totals[name] += n
        counted += sum(sum(c.values()) for c in result.minute_counts.values())
    # Reference: first arrival of each id; late = older than max seen so far minus lateness.
    seen: set[str] = set()
    newest = None
    expected = {"valid": 0, "duplicates": 0, "late": 0}
    for a in arrivals:
        if a.event.event_id in seen:
            expected["duplicates"] += 1
            continue
        seen.add(a.event.event_id)
        expected["valid"] += 1
        if newest is not None and a.event_ms < newest - 300_000:
            expected["late"] += 1
        else:
            newest = a.event_ms if newest is None else max(newest, a.event_ms)
    assert totals == expected
    assert counted == expected["valid"] - expected["late"]
