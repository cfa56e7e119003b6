"""The whole dataflow on Bytewax's testing source and sinks, including an abort and resume."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.dataflow import build_flow
from operators.aggregates import minute_label
from sinks.dead_letters import decode_dead_letter
from state.records import ArchiveObject, HashWrite, RawMessage, RedisWrite, StreamEntry
from state.settings import load_settings
from tests.support.events import event_json, raw

SETTINGS = load_settings(archive_chunk_rows=7, shard_count=8, allowed_lateness_s=120)


def traffic() -> list[RawMessage]:
    """60 events over 6 minutes for 5 customers, 3 duplicates and 2 malformed messages."""
    messages = []
    for i in range(60):
        value = event_json(
            f"e{i}", i * 6, ["click", "screen_view", "login"][i % 3], customer_id=f"C{i % 5}"
        )
        messages.append(value)
    messages.insert(10, messages[3])
    messages.insert(30, messages[20])
    messages.insert(31, messages[20])
    messages.insert(5, b"{broken")
    messages.insert(40, event_json("bad", 0, "purchase"))
    return [raw(offset, value) for offset, value in enumerate(messages)]


def apply_redis(writes: list[list[RedisWrite]]) -> tuple[dict[str, dict[str, Any]], set[int]]:
    """What Redis ends up holding after these writes, in order (HSET semantics)."""
    hashes: dict[str, dict[str, Any]] = {}
    stream_ids: set[int] = set()
    for batch in writes:
        for write in batch:
            if ":ops:" in write.key:
                continue  # the job's own view by the wall clock, not a figure
            if isinstance(write, HashWrite):
                hashes.setdefault(write.key, {}).update(write.fields)
            elif isinstance(write, StreamEntry):
                stream_ids.add(write.id_ms)
    return hashes, stream_ids


def final_objects(objects: list[tuple[str, list[ArchiveObject]]]) -> dict[str, list[str]]:
    """The archive after these writes: the last object written under each name."""
    archive: dict[str, list[str]] = {}
    for _, batch in objects:
        for obj in batch:
            if obj.table == "events":
                archive[obj.relative_path] = [row.event.event_id for row in obj.rows]
            else:
                archive[obj.relative_path] = [row.session_id for row in obj.rows]
    return archive


def run(items: list[Any], recovery: RecoveryConfig | None = None) -> tuple[list[Any], ...]:
    redis_out: list[list[RedisWrite]] = []
    archive_out: list[tuple[str, list[ArchiveObject]]] = []
    dead_out: list[Any] = []
    flow = build_flow(
        SETTINGS,
        TestingSource(items, batch_size=9),
        redis_sink=TestingSink(redis_out),
        archive_sink=TestingSink(archive_out),
        dead_letter_sink=TestingSink(dead_out),
        segments=lambda customer_ids: dict.fromkeys(customer_ids, "retail"),
    )
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    return redis_out, archive_out, dead_out


def test_the_skeleton_counts_archives_and_dead_letters_every_message() -> None:
    redis_out, archive_out, dead_out = run(traffic())
    hashes, _ = apply_redis(redis_out)

    expected_minutes: Counter[tuple[str, str]] = Counter()
    for i in range(60):
        minute = minute_label(1_768_464_000_000 + i * 6000)
        expected_minutes[(minute, ["click", "screen_view", "login"][i % 3])] += 1
    got = Counter(
        {
            (key.removeprefix("cs:minute:events_by_type:"), field): value
            for key, fields in hashes.items()
            if key.startswith("cs:minute:events_by_type:")
            for field, value in fields.items()
        }
    )
    assert got == expected_minutes
    assert hashes["cs:pipeline"] == {
        "valid": 60, "duplicates": 3, "late": 0, "dead_letters": 2, "offer_rule_errors": 0,
        "dead_letters.decode": 1, "dead_letters.validate": 1,
        # How far the input has got: its newest event (one partition, read to its end).
        "low_watermark_ms": 1_768_464_000_000 + 59 * 6000,
    }  # fmt: skip

    archive = final_objects(archive_out)
    archived = [e for path, ids in archive.items() if path.startswith("events/") for e in ids]
    assert sorted(archived) == sorted(f"e{i}" for i in range(60))
    # Every app event is in exactly one archived session (the input ended, so all closed).
    sessions = [
        row for _, batch in archive_out for obj in batch if obj.table == "sessions"
        for row in obj.rows
    ]  # fmt: skip
    final = {s.session_id: s for s in sessions}
    assert sum(s.event_count for s in final.values()) == 60
    assert {s.identity for s in final.values()} == {f"C{i}" for i in range(5)}

    letters = [decode_dead_letter(m.value) for m in dead_out]
    assert sorted(d.original for d in letters) == sorted(
        [b"{broken", event_json("bad", 0, "purchase")]
    )
    assert {m.topic for m in dead_out} == {"bank.events.dlq"}


def test_an_abort_and_resume_from_the_recovery_store_changes_no_figure(tmp_path: Path) -> None:
    clean_redis, clean_archive, _ = run(traffic())

    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(tmp_path)
    items: list[Any] = traffic()
    items.insert(37, TestingSource.ABORT())
    first_redis, first_archive, _ = run(items, recovery)
    assert len(first_redis) > 0
    second_redis, second_archive, _ = run(items, recovery)

    assert apply_redis(first_redis + second_redis) == apply_redis(clean_redis)
    assert final_objects(first_archive + second_archive) == final_objects(clean_archive)
