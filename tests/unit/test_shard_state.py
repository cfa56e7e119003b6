"""Dedupe, watermark and late events of one shard."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.sessions import SessionEvent
from operators.shard_state import MINUTE_MS, Shard, ShardConfig
from state.snapshots import SnapshotVersionError
from tests.support.events import BASE, arrival, journey_items

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


def test_a_partition_far_ahead_neither_makes_the_others_late_nor_forgets_their_ids() -> None:
    # Partition 1 is read 3 hours ahead; partition 0 still has its events and, 50 minutes
    # (within the dedupe window) after an event, a repeat of it.
    shard = Shard(CONFIG)
    shard.process([arrival("a", 0, partition=0)], {"bank.events#0": 0 + BASE_MINUTE})
    ahead = BASE_MINUTE + 3 * 3_600_000
    shard.process([arrival("far", 3 * 3600, partition=1)], {"bank.events#1": ahead})
    later = shard.process(
        [arrival("b", 60, offset=1, partition=0), arrival("a", 3000, offset=2, partition=0)],
        {"bank.events#0": BASE_MINUTE + 3_000_000},
    )
    assert later.pipeline == {"valid": 1, "duplicates": 1, "late": 0}
    # The watermark is partition 0's, less the lateness.
    assert shard.watermark_ms == BASE_MINUTE + 3_000_000 - 300_000


def test_an_idle_partition_stops_holding_the_watermark_until_it_delivers_again() -> None:
    shard = Shard(CONFIG)
    shard.process([arrival("a", 0, partition=0)], {"bank.events#0": BASE_MINUTE})
    shard.process([arrival("b", 600, partition=1)], {"bank.events#1": BASE_MINUTE + 600_000})
    assert shard.watermark_ms == BASE_MINUTE - 300_000
    shard.process([], {}, ["bank.events#0"])  # its source: read to the end and quiet
    assert shard.watermark_ms == BASE_MINUTE + 300_000
    shard.process([arrival("c", 400, partition=0)], {"bank.events#0": BASE_MINUTE + 400_000})
    assert shard.watermark_ms == BASE_MINUTE + 100_000
    # The idle mark is kept in the snapshot.
    shard.process([], {}, ["bank.events#0"])
    assert Shard(CONFIG, shard.snapshot()).watermark_ms == BASE_MINUTE + 300_000


def test_nothing_is_late_until_every_expected_partition_reported() -> None:
    config = ShardConfig(300_000, 3_600_000, 1000, input_positions=("p#0", "p#1"))
    shard = Shard(config)
    shard.process([arrival("a", 3600)], {"p#0": BASE_MINUTE + 3_600_000})
    late = shard.process([arrival("b", 0, offset=1)], {"p#0": BASE_MINUTE + 3_600_000})
    assert late.pipeline["late"] == 0
    shard.process([], {}, ["p#1"])  # an empty partition, reported idle by its source
    assert shard.watermark_ms == BASE_MINUTE + 3_300_000


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
    unknown = msgspec.msgpack.encode({"version": 0, "max_event_ms": 0, "seen": {}})
    with pytest.raises(SnapshotVersionError, match="version 0"):
        Shard(CONFIG, unknown)


def test_a_version_1_snapshot_keeps_its_dedupe_and_watermark() -> None:
    """The skeleton's stores (version 1) resume with the journeys' state empty."""
    v1 = msgspec.msgpack.encode(
        {"version": 1, "max_event_ms": BASE_MINUTE + 600_000, "seen": {"a": BASE_MINUTE // 60_000}}
    )
    shard = Shard(CONFIG, v1)
    result = shard.process([arrival("a", 5), arrival("b", 10)])
    assert result.pipeline == {"valid": 1, "duplicates": 1, "late": 1}


def test_a_version_2_snapshot_keeps_its_dedupe() -> None:
    """Version 2 kept the ids as one dict; version 3 stores them by minute."""
    shard = Shard(CONFIG)
    shard.process([arrival("a", 600), arrival("b", 10)])
    current = msgspec.msgpack.decode(shard.snapshot())
    seen = {i: m for m, ids in current["seen"].items() for i in ids}
    identities: dict[str, dict[str, object]] = {"devices": {}, "last_seen": {}}  # Python structs
    v2 = msgspec.msgpack.encode({**current, "version": 2, "seen": seen, "identities": identities})
    restored = Shard(CONFIG, v2)
    result = restored.process([arrival("a", 600), arrival("b", 700), arrival("c", 650)])
    assert result.pipeline == {"valid": 1, "duplicates": 2, "late": 0}


def test_a_version_3_snapshot_keeps_the_undecided_identities_of_its_devices() -> None:
    """Version 3 kept the devices' identity state as Python structs; version 4 the native
    core's bytes. An anonymous event waiting in a v3 store still goes to whoever logs in."""
    anonymous = arrival("anon", 0)
    at = anonymous.event_ms
    undecided = SessionEvent(at, "anon", "click", "web", "D1", None, "web-banking", "3.1")
    v3 = msgspec.msgpack.encode(
        {
            "version": 3,
            "max_event_ms": at,
            "seen": {at // MINUTE_MS: ["anon"]},
            "identities": {
                "devices": {
                    "D1": {"logins": [], "times": [[at, "anon"]], "pending": [[at, "anon"]]}
                },
                "last_seen": {"D1": at},
            },
            "undecided": {"anon": undecided},
            "partition_newest": {"bank.events#0": at},
            "partition_idle": [],
        }
    )
    shard = Shard(CONFIG, v3)
    result = shard.process([arrival("login", 60, event_type="login"), arrival("later", 700)])
    stitched = [
        (identity, e.event_id)
        for batch in result.journeys.values()
        for identity, e in journey_items(batch)
    ]
    assert ("C1", "anon") in stitched
    assert shard.process([arrival("anon", 0)]).pipeline["duplicates"] == 1


def test_snapshots_between_batches_remember_every_id() -> None:
    """Each snapshot re-uses the bytes of the minutes that did not change."""
    shard = Shard(CONFIG)
    for n in range(30):
        shard.process([arrival(f"e{n}", 20 * n), arrival(f"e{n}-b", 20 * n + 1)])
        shard = Shard(CONFIG, shard.snapshot()) if n % 7 == 0 else shard
        shard.snapshot()
    restored = Shard(CONFIG, shard.snapshot())
    assert restored.remembered_ids == shard.remembered_ids == 60
    result = restored.process([arrival(f"e{n}", 20 * n) for n in range(30)])
    assert result.pipeline["duplicates"] == 30


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=200),
    st.dictionaries(st.integers(0, 40), st.integers(0, 3600), min_size=41, max_size=41),
    st.integers(1, 20),
)
def test_dedupe_and_lateness_match_a_reference(
    idents: list[int], seconds_of: dict[int, int], cut: int
) -> None:
    """Any order, any batching: counted + late + duplicates add up as the definitions say."""
    shard = Shard(CONFIG)
    arrivals = [arrival(f"e{ident}", seconds_of[ident], offset=i) for i, ident in enumerate(idents)]
    totals = {"valid": 0, "duplicates": 0, "late": 0}
    counted = 0
    batches = [arrivals[start : start + cut] for start in range(0, len(arrivals), cut)]
    for batch in batches:
        result = shard.process(batch)
        for name, n in result.pipeline.items():
            totals[name] += n
        counted += sum(sum(c.values()) for c in result.minute_counts.values())
    # Reference: first arrival of each id; late = older than the newest on-time event seen in
    # earlier batches minus the lateness (one input partition).
    seen: set[str] = set()
    newest: int | None = None
    expected = {"valid": 0, "duplicates": 0, "late": 0}
    for batch in batches:
        watermark = None if newest is None else newest - 300_000
        for a in batch:
            if a.event.event_id in seen:
                expected["duplicates"] += 1
                continue
            seen.add(a.event.event_id)
            expected["valid"] += 1
            if watermark is not None and a.event_ms < watermark:
                expected["late"] += 1
            else:
                newest = a.event_ms if newest is None else max(newest, a.event_ms)
    assert totals == expected
    assert counted == expected["valid"] - expected["late"]


def test_a_lagging_partition_is_not_late_while_it_is_active() -> None:
    """Catching up on a backlog: one partition hours ahead does not make the other late."""
    shard = Shard(CONFIG)
    shard.process([arrival("a0", 0, partition=0), arrival("b0", 0, partition=1)])
    shard.process([arrival("a1", 50 * 60, partition=0)])  # partition 0 is 50 minutes ahead
    result = shard.process([arrival("b1", 60, partition=1)])
    assert result.pipeline == {"valid": 1, "duplicates": 0, "late": 0}
    result = shard.process([arrival("b-late", 0, partition=1), arrival("b2", 700, partition=1)])
    assert result.pipeline["late"] == 0  # 0 s is within 5 min of partition 1's newest (60 s)
    result = shard.process([arrival("b-too-late", 1, partition=1)])
    assert result.pipeline["late"] == 1  # partition 1 is at 700 s now


def test_idle_devices_are_forgotten_but_a_device_with_undecided_events_is_kept() -> None:
    config = msgspec.structs.replace(CONFIG, device_idle_ms=3_600_000)
    shard = Shard(config)
    shard.process(
        [arrival(f"l{i}", i / 1000, event_type="login", device_id=f"D{i}") for i in range(300)]
    )
    assert shard.core.device_count == 300
    shard.process([arrival("anon", 2 * 3600, customer_id=None, device_id="Dwait")])
    assert shard.core.device_count == 1
    assert shard.core.undecided_count == 1
