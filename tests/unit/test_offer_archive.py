"""The offers table: every decision of every offers shard once, in the hour of its trigger, in an
object named by the table part and the hour, final only when the hour's offers are all
released."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import pytest

from flows.archive_steps import HourArchiveLogic, hour_archive_logic
from flows.offers_step import (
    OFFER_MAX_HOLD_MS,
    OFFER_RETIRE_MS,
    OffersBatch,
    _offer_rows,
    offers_logic,
)
from offers import Profile
from offers.archive import OfferArchive, OfferRow
from offers.engine import OffersConfig, OffersShard
from offers.loader import CampaignSet
from state.records import ArchiveObject, Arrival
from state.settings import load_settings
from state.snapshots import SnapshotVersionError
from tests.unit.test_offers_engine import atm, loan_campaign, ms

# 21:30 in Warsaw: inside the quiet hours, so the offer waits until 08:00 (07:00 UTC).
EVENING = datetime(2026, 1, 15, 20, 30, tzinfo=UTC)
MORNING = datetime(2026, 1, 16, 7, 0, tzinfo=UTC)
SHARD = "journey-0007"
CONFIG = OffersConfig(max_trigger_age_ms=0)


class _Registry:
    def __init__(self) -> None:
        self.campaigns = CampaignSet([loan_campaign()])

    def current(self) -> CampaignSet:
        return self.campaigns


def _lookup(ids: Iterable[str]) -> dict[str, Profile]:
    return {i: Profile(i, first_name="Ola", sms_consent=True) for i in ids}


class Run:
    """An offers shard and the offers table's one part, as the dataflow wires them, driven by
    event time, with a wall clock that stands still."""

    def __init__(self, resume: tuple[bytes, bytes] | None = None) -> None:
        self.now = 1_800_000_000.0
        registry = _Registry()
        settings = load_settings(archive_max_age_s=3600.0)
        self.logic = offers_logic(
            resume and resume[0],
            CONFIG,
            settings,
            lambda: cast(Any, registry),
            _lookup,
            lambda: self.now,
        )
        self.table: HourArchiveLogic = hour_archive_logic(
            resume and resume[1],
            lambda groups: OfferArchive(3600.0, OFFER_RETIRE_MS, OFFER_MAX_HOLD_MS, groups),
            lambda: self.now,
            wait_for_epoch=False,
        )
        self.objects: list[ArchiveObject] = []

    def _rows(self, outputs: Iterable[Any]) -> None:
        route = _offer_rows(1)
        rows = [part for output in outputs for _, part in route((SHARD, output))]
        if rows:
            for objects in self.table.on_batch(rows)[0]:
                self.objects.extend(objects)

    def feed(self, low: datetime, *arrivals: Arrival) -> None:
        self._rows(self.logic.on_batch([OffersBatch(ms(low), list(arrivals))])[0])

    def snapshot(self) -> tuple[bytes, bytes]:
        return self.logic.snapshot(), self.table.snapshot()


def _rows(obj: ArchiveObject) -> list[OfferRow]:
    return cast(list[OfferRow], obj.rows)


def test_an_offer_held_over_the_quiet_hours_keeps_its_hour_open_until_its_release() -> None:
    run = Run()
    run.feed(EVENING, atm("e1", EVENING))
    # Hours later the trigger's hour would be final, but its offer is still waiting.
    run.feed(MORNING - timedelta(minutes=1))
    assert run.objects == []
    run.feed(MORNING)
    [obj] = run.objects
    assert obj.relative_path == "offers/dt=2026-01-15/hour=20/offers-00.parquet"
    match, release = sorted(_rows(obj), key=lambda r: r.stage)
    assert (match.stage, match.outcome, match.reason) == ("match", "pending", "quiet_hours")
    assert (release.stage, release.outcome) == ("release", "sent")
    assert release.decision_id == f"{match.offer_id}:release"
    # The template and its non-personal parameters, not the text with the customer's name.
    assert (release.channel, release.template) == ("sms", "{first_name}: a loan of {limit}")
    assert release.params == '{"limit":5000}'
    assert (match.channel, match.template, match.params) == (None, None, None)
    assert release.send_at_ms == ms(MORNING) == match.send_at_ms
    assert match.trigger_ms == release.trigger_ms == ms(EVENING)
    # Final: the input moving on writes nothing more.
    run.feed(MORNING + timedelta(hours=5))
    assert len(run.objects) == 1


def _play(run: Run, steps: list[tuple[datetime, list[Arrival]]]) -> None:
    for low, arrivals in steps:
        run.feed(low, *arrivals)


def _finish(run: Run) -> None:
    run._rows(run.logic.on_eof()[0])
    for objects in run.table.on_eof()[0]:
        run.objects.extend(objects)


def _final(objects: list[ArchiveObject]) -> dict[str, list[str]]:
    """What S3 holds after these writes: the last write of each name wins."""
    final: dict[str, list[str]] = {}
    for obj in objects:
        final[obj.relative_path] = sorted(r.decision_id for r in _rows(obj))
    return final


def test_a_replay_after_a_crash_leaves_each_decision_once() -> None:
    day = EVENING - timedelta(hours=1, minutes=30)  # 20:00 in Warsaw: sent 45 s later
    steps = [
        (day, [atm("e0", day, customer="C3")]),
        (day + timedelta(minutes=1), []),
        (EVENING, [atm("e1", EVENING)]),
        (EVENING + timedelta(minutes=20), [atm("e2", EVENING, customer="C2")]),
        (EVENING + timedelta(hours=5), []),
        (MORNING, []),
        (MORNING + timedelta(hours=4), []),
    ]
    straight = Run()
    _play(straight, steps)
    _finish(straight)
    expected = _final(straight.objects)
    assert [len(ids) for ids in expected.values()] == [2, 4]
    assert list(expected) == [
        "offers/dt=2026-01-15/hour=19/offers-00.parquet",
        "offers/dt=2026-01-15/hour=20/offers-00.parquet",
    ]
    for crash_at in range(1, len(steps)):
        crashed = Run()
        _play(crashed, steps[:crash_at])
        snapshot = crashed.snapshot()
        # Everything after the snapshot was written before the crash, and is replayed.
        _play(crashed, steps[crash_at:])
        resumed = Run(snapshot)
        resumed.now += 5000
        _play(resumed, steps[crash_at:])
        _finish(resumed)
        assert _final(crashed.objects + resumed.objects) == expected, crash_at


def _row(offer: str, stage: str, outcome: str, trigger: datetime) -> OfferRow:
    return OfferRow(
        f"{offer}:{stage}", offer, stage, outcome, None, None, "loan", 1, "C1", "e1",
        ms(trigger), ms(trigger), ms(trigger), None,
    )  # fmt: skip


def test_a_release_after_the_hold_limit_gets_an_object_of_its_own() -> None:
    archive = OfferArchive(3600.0, retire_ms=3600_000, max_hold_ms=6 * 3600_000)
    objects = archive.add([_row("o1", "match", "pending", EVENING)], "offers-00", 0, 0.0)
    assert objects == []
    objects = archive.add([], "offers-00", ms(EVENING + timedelta(hours=6, minutes=30)), 1.0)
    [held] = objects
    assert [r.decision_id for r in _rows(held)] == ["o1:match"]
    assert archive.buffered_rows == 0
    [late] = archive.add([_row("o1", "release", "sent", EVENING)], "offers-00", ms(MORNING), 2.0)
    assert late.relative_path == "offers/dt=2026-01-15/hour=20/offers-00-late-o1-release.parquet"


def test_older_snapshot_formats_are_restored_or_refused_with_what_to_do() -> None:
    # Version 1 of the step's snapshot was the engine's state alone.
    old = OffersShard(CONFIG)
    old.process([atm("e1", EVENING)], _Registry().current(), _lookup, ms(EVENING), ms(EVENING))
    run = Run((old.snapshot(), Run().table.snapshot()))
    run.feed(MORNING)
    [obj] = run.objects
    # The match was decided before the upgrade (not archived); its release is.
    assert [(r.stage, r.outcome) for r in _rows(obj)] == [("release", "sent")]
    # Version 2 held the shard's decisions for per-shard objects: refused, with the way out.
    per_shard = msgspec.msgpack.encode({"version": 2, "offers": b"", "archive": None})
    with pytest.raises(SnapshotVersionError, match="new recovery store"):
        Run((per_shard, Run().table.snapshot()))
    future = msgspec.msgpack.encode({"version": 7, "offers": b""})
    with pytest.raises(SnapshotVersionError, match="version 7 cannot be restored"):
        Run((future, Run().table.snapshot()))


def test_a_version_1_store_restores_its_rows_without_the_sent_text() -> None:
    """Version 1 kept each sent offer's text, with the customer's first name: restored, the rows
    keep everything but it, and the objects rewritten from them hold no name."""
    hour = ms(EVENING) // 3_600_000
    row = [
        "o1:release", "o1", "release", "sent", None, None, "loan", 1, "C1", "e1",
        ms(EVENING), ms(EVENING), ms(MORNING), 5, "sms", "Ola: a loan of 5000",
    ]  # fmt: skip
    v1 = msgspec.msgpack.encode(
        {"version": 1, "groups": {hour: [row]}, "retired_below": 0, "shard": "offers-00"}
    )
    archive = OfferArchive(30.0, 3 * 3_600_000, 48 * 3_600_000, v1)
    assert b"Ola" not in archive.snapshot()
    archive.mark_all_dirty(0.0)  # as the step does after a restore
    [restored] = [r for obj in archive.flush_all() for r in obj.rows]
    assert (restored.decision_id, restored.channel) == ("o1:release", "sms")
    assert (restored.template, restored.params) == (None, None)
