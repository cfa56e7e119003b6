"""Journeys figures: funnels, rage clicks, abandoned forms, closing, lateness and freed state."""

from __future__ import annotations

import random

import msgspec
import pytest
from clickstream_native import JOURNEYS_SNAPSHOT_VERSION

from operators.journeys import (
    JourneyBatchResult,
    JourneyConfig,
    Journeys,
    JourneySnapshot,
)
from operators.sessions import SessionEvent
from state.funnels import Funnel, FunnelStep
from state.totals import HASH, ZSET, FigureDeltas, Totals
from tests.support.events import journey_batch

MIN = 60_000
T0 = 1_768_464_000_000  # 2026-01-15T08:00Z
DAY = "2026-01-15"
DAY_INDEX = T0 // 86_400_000


def ev(
    seconds: float,
    event_id: str,
    event_type: str = "screen_view",
    screen: str | None = "dashboard",
    **extra: str | None,
) -> SessionEvent:
    return SessionEvent(
        T0 + int(seconds * 1000),
        event_id,
        event_type,
        extra.pop("channel", None) or "mobile",
        extra.pop("device_id", "D1"),
        extra.pop("customer_id", "C1"),
        "mobile-banking",
        "5.0",
        "Android",
        screen,
        extra.pop("element", None),
        extra.pop("form", None),
        extra.pop("error_code", None),
    )


LOAN = Funnel(
    "loan",
    tuple(FunnelStep.parse(s) for s in ("screen:loan", "event:form_start", "event:conversion")),
    10 * MIN,
)


def session_figures(events: list[SessionEvent]) -> FigureDeltas:
    """The day figures of one customer's events, closed as one session."""
    shard = journeys()
    figures = feed(shard, [item("C1", e) for e in events]).figures
    flushed = shard.flush(no_segments)
    assert len(flushed.sessions) == 1
    return {**figures, **flushed.figures}


def reached(events: list[SessionEvent]) -> dict[str, int]:
    figures = session_figures(events)
    return figures.get((HASH, f"cs:day:{DAY}:funnel:loan", DAY_INDEX), {})


def test_a_funnel_counts_steps_in_order_within_the_window() -> None:
    in_order = [ev(0, "a", screen="loan"), ev(60, "b", "form_start"), ev(120, "c", "conversion")]
    assert reached(in_order) == {"step_1": 1, "step_2": 1, "step_3": 1}
    wrong_order = [ev(0, "a", "form_start"), ev(60, "b", screen="loan"), ev(90, "c", "conversion")]
    assert reached(wrong_order) == {"step_1": 1}
    too_slow = [ev(0, "a", screen="loan"), ev(60, "b", "form_start"), ev(601, "c", "conversion")]
    assert reached(too_slow) == {"step_1": 1, "step_2": 1}
    second_try = [ev(0, "a", screen="loan"), ev(700, "b", screen="loan"),
                  ev(760, "c", "form_start"), ev(800, "d", "conversion")]  # fmt: skip
    assert reached(second_try) == {"step_1": 1, "step_2": 1, "step_3": 1}
    assert reached([ev(0, "a", screen="home")]) == {}


def rage(events: list[SessionEvent]) -> dict[str, int]:
    figures = session_figures(events)
    return figures.get((ZSET, f"cs:day:{DAY}:top:rage_clicks", DAY_INDEX), {})


def test_more_than_three_clicks_within_a_second_is_one_rage_click() -> None:
    burst = [ev(i * 0.2, f"c{i}", "click", screen="pay", element="btn") for i in range(6)]
    assert rage(burst) == {"pay|btn": 1}
    three = [ev(i * 0.3, f"c{i}", "click", screen="pay", element="btn") for i in range(3)]
    assert rage(three) == {}
    spread = [ev(i * 0.5, f"c{i}", "click", screen="pay", element="btn") for i in range(4)]
    assert rage(spread) == {}  # four clicks, but never four within one second


def test_a_form_started_and_never_submitted_in_the_session_is_abandoned() -> None:
    events = [ev(0, "a", "form_start", form="loan_form"), ev(5, "b", "form_start", form="card"),
              ev(9, "c", "form_submit", form="card")]  # fmt: skip
    figures = session_figures(events)
    assert figures[(ZSET, f"cs:day:{DAY}:top:abandoned_forms", DAY_INDEX)] == {"loan_form": 1}
    assert figures[(HASH, f"cs:day:{DAY}:form:started", DAY_INDEX)] == {"loan_form": 1, "card": 1}
    assert figures[(HASH, f"cs:day:{DAY}:form:submitted", DAY_INDEX)] == {"loan_form": 0, "card": 1}


def journeys() -> Journeys:
    return Journeys(JourneyConfig("cs", gap_ms=30 * MIN, stitch_allowance_ms=5 * MIN,
                                  funnels=(LOAN,)))  # fmt: skip


def item(identity: str, event: SessionEvent) -> tuple[str, SessionEvent]:
    return identity, event


def feed(shard: Journeys, items: list[tuple[str, SessionEvent]]) -> JourneyBatchResult:
    """As identity shards send it: with their watermark (here the newest event less 5 min)."""
    upstream = max(e.event_ms for _, e in items) - 5 * MIN
    return shard.process([journey_batch(items)], no_segments, upstream)


def no_segments(ids: object) -> dict[str, str]:
    return {"C1": "premium"}


def test_a_session_closes_after_the_gap_and_its_figures_are_counted() -> None:
    shard = journeys()
    totals = Totals()
    first = feed(
        shard,
        [
            item("C1", ev(0, "a", screen="loan")),
            item("C1", ev(30, "b", screen="pay")),
            item("C1", ev(60, "c", "conversion", screen=None)),
        ],
    )
    assert first.sessions == []
    totals.apply([first.figures])
    # Another customer's event 42 minutes later moves this shard's time past gap + waits.
    later = feed(shard, [item("C2", ev(42 * 60, "z", screen="home", customer_id="C2"))])
    [record] = later.sessions
    assert (record.identity, record.event_count, record.converted) == ("C1", 3, True)
    assert (record.exit_screen, record.segment) == ("pay", "premium")
    totals.apply([later.figures])
    assert totals.value(HASH, f"cs:day:{DAY}:by_segment:sessions", DAY_INDEX) == {"premium": 1}
    assert totals.value(HASH, f"cs:day:{DAY}:by_segment:conversions", DAY_INDEX) == {"premium": 1}
    assert totals.value(ZSET, f"cs:day:{DAY}:transitions", DAY_INDEX) == {"loan|pay": 1}
    assert totals.value(ZSET, f"cs:day:{DAY}:top:exit_screens", DAY_INDEX) == {"pay": 1}
    assert totals.value(HASH, f"cs:day:{DAY}:funnel:loan", DAY_INDEX) == {"step_1": 1}
    minute: dict[str, int] = {}
    for result in (first, later):
        for field, n in result.minutes.get(T0, {}).items():
            minute[field] = minute.get(field, 0) + n
    assert minute == {"active_customers": 1, "sessions_started": 1, "sessions_converted": 1}


def test_an_event_that_would_join_a_closed_session_is_late_for_sessions() -> None:
    shard = journeys()
    feed(shard, [item("C1", ev(0, "a"))])
    feed(shard, [item("C2", ev(41 * 60, "z", customer_id="C2"))])
    result = feed(shard, [item("C1", ev(10 * 60, "late"))])
    assert result.pipeline == {"late_for_sessions": 1}
    assert result.sessions == []


def test_idle_customers_state_is_freed() -> None:
    shard = journeys()
    feed(shard, [item(f"C{i}", ev(i, f"e{i}", customer_id=f"C{i}")) for i in range(500)])
    assert shard.open_identities == 500
    # A day later only the newest customer is still open; nothing of the others is kept.
    feed(shard, [item("C9", ev(86_400 + 3 * 3600, "late-day", customer_id="C9"))])
    feed(shard, [item("C9", ev(86_400 + 6 * 3600, "next", customer_id="C9"))])
    state = msgspec.msgpack.decode(shard.snapshot(), type=JourneySnapshot)
    assert list(state.open_events) == ["C9"]
    snapshot = shard.snapshot()
    assert len(snapshot) < 2_000  # the 500 customers' events are not in it any more


def test_a_snapshot_taken_between_batches_resumes_to_the_same_figures_and_sessions() -> None:
    # Snapshots re-encode only what changed since the last one; a resume from any of them
    # must carry on exactly as the shard that never stopped.
    rng = random.Random(7)
    batches = [
        [
            item(
                customer,
                ev(minute * 60 + rng.random() * 50, f"e{minute}-{n}", customer_id=customer),
            )
            for n in range(rng.randint(1, 6))
            for customer in [f"C{rng.randint(1, 40)}"]
        ]
        for minute in range(0, 480, 4)
    ]
    steady = journeys()
    steady_results = [feed(steady, batch) for batch in batches]
    for cut in (5, 20, 41, 70):
        resumed = journeys()
        for batch in batches[:cut]:
            feed(resumed, batch)
        resumed.snapshot()  # an earlier epoch's snapshot, then more changes before the next
        feed(resumed, batches[cut])
        resumed = Journeys(resumed._config, resumed.snapshot())
        later = [feed(resumed, batch) for batch in batches[cut + 1 :]]
        expected = steady_results[cut + 1 :]
        assert [r.figures for r in later] == [r.figures for r in expected]
        assert [r.sessions for r in later] == [r.sessions for r in expected]
        assert [r.minutes for r in later] == [r.minutes for r in expected]
    assert sum(len(r.sessions) for r in steady_results) > 20


def test_a_recovery_store_written_by_the_previous_snapshot_version_resumes_exactly() -> None:
    """An upgrade resumes from the store the old code wrote: version 1 also kept the newest
    event time taken (never read), and the new code restores it to the same sessions."""
    batches = [[item("C1", ev(m * 60, f"e{m}", customer_id="C1"))] for m in (0, 5, 9, 50, 52)]
    steady = journeys()
    results = [feed(steady, batch) for batch in batches]
    resumed = journeys()
    for batch in batches[:3]:
        feed(resumed, batch)
    current = msgspec.msgpack.decode(resumed.snapshot())
    assert current["version"] == JOURNEYS_SNAPSHOT_VERSION == 2
    assert "newest_ms" not in current
    written_by_v1 = msgspec.msgpack.encode({**current, "version": 1, "newest_ms": T0 + 9 * MIN})
    resumed = Journeys(resumed._config, written_by_v1)
    later = [feed(resumed, batch) for batch in batches[3:]]
    assert [r.sessions for r in later] == [r.sessions for r in results[3:]]
    assert [r.figures for r in later] == [r.figures for r in results[3:]]
    assert len(later[0].sessions) == 1  # the first session closed after the resume

    with pytest.raises(ValueError, match="journeys snapshot version 3 cannot be restored"):
        Journeys(resumed._config, msgspec.msgpack.encode({**current, "version": 3}))
