"""Identity stitching and sessions, through the job's own steps, against the reference.

The reference (tests/support/journey_reference.py) reads PRODUCT.md's definitions literally over
the whole input at once. The job's decode, identity-shard (the native core) and journeys steps
see the same events as raw messages in a disordered arrival order (within the allowed lateness),
with repeats, in batches, sometimes resumed from their snapshots between batches, deciding as
the watermark moves. Both must give the same sessions, each event the same identity.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from state.settings import Settings
from tests.support import journey_reference as ref
from tests.support.events import event_json, raw
from tests.support.identity_reference import ingest_identities
from tests.support.reference import parse_time
from tests.support.streamed import StreamedSteps

MIN = 60_000
LATENESS_S = 300
SPAN_S = 3 * 3600
"""The generated inputs span three hours of event time."""
POSITION = ("bank.events#0",)


def _settings(stitch_allowance_s: int = SPAN_S) -> Settings:
    # A session closes once the watermark is past its end by the gap and the stitch allowance;
    # an anonymous start decided later than that is counted late for sessions (tested below).
    # With an allowance as long as the input, every decision is in time and sessions are exact.
    return Settings.model_validate(
        {
            "shard_count": 4,
            "allowed_lateness_s": LATENESS_S,
            "session_gap_s": 1800,
            "stitch_allowance_s": stitch_allowance_s,
            "dedupe_window_s": 86_400,
        }
    )


def _event(index: int, ms: int, kind: str, customer: str | None, device: str | None) -> bytes:
    if customer is None and device is None:
        device = "D1"
    if kind == "login" and (customer is None or device is None):
        kind = "screen_view"  # a login names its customer on its device
    return event_json(f"e{index:03d}", ms / 1000, kind, customer, device)


def _run(
    bodies: list[bytes],
    order: list[int],
    batch: int,
    restarts: set[int],
    settings: Settings | None = None,
) -> StreamedSteps:
    steps = StreamedSteps(settings or _settings(), POSITION)
    messages = [raw(offset, bodies[i]) for offset, i in enumerate(order)]
    for number, start in enumerate(range(0, len(messages), batch)):
        steps.feed(messages[start : start + batch])
        if number in restarts:
            steps.restart()
    steps.finish()
    return steps


def _expected(bodies: list[bytes]) -> tuple[dict[str, dict[str, Any]], list[ref.Session]]:
    unique: dict[str, dict[str, Any]] = {}
    for body in bodies:
        event = json.loads(body)
        unique.setdefault(event["event_id"], event)
    events = [ref.to_e(e) for e in unique.values()]
    return unique, ref.sessions(events, ref.identities(events))


def _arrival_order(bodies: list[bytes], rnd: random.Random) -> list[int]:
    """By time, each event possibly overtaken by ones up to the lateness newer; late ones out."""
    times = [json.loads(b)["event_time"] for b in bodies]
    moments = [parse_time(t) for t in times]
    ms = [round(m.timestamp() * 1000) for m in moments if m is not None]
    order = sorted(range(len(bodies)), key=lambda i: ms[i] + rnd.randint(0, LATENESS_S * 1000 - 1))
    newest = -(2**62)
    on_time = []
    for i in order:  # an event later than the newest less the lateness is left out
        if ms[i] >= newest - LATENESS_S * 1000:
            on_time.append(i)
        newest = max(newest, ms[i])
    return on_time


event_strategy = st.tuples(
    # Within three hours, mostly on whole minutes (else a millisecond off one): gaps of exactly
    # the session gap are frequent, and identities have several sessions.
    st.builds(
        lambda minute, ms: minute * MIN + ms,
        st.integers(0, 36).map(lambda five: five * 5),
        st.sampled_from([0, 0, 0, 1, -1]),
    ),
    st.sampled_from(["screen_view", "click", "login", "conversion"]),
    st.sampled_from(["C1", "C2", None, None]),
    st.sampled_from(["D1", "D2", "D3", None]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(event_strategy, min_size=1, max_size=80),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 79), max_size=6),
    st.sets(st.integers(0, 20), max_size=4),
)
def test_the_steps_give_the_reference_sessions_and_identities(
    raw_events: list[tuple[int, str, str | None, str | None]],
    batch: int,
    rnd: random.Random,
    repeats: list[int],
    restarts: set[int],
) -> None:
    bodies = [_event(i, *fields) for i, fields in enumerate(raw_events)]
    order = _arrival_order(bodies, rnd)
    on_time = [bodies[i] for i in order]
    # Repeats of events already sent, delivered again later in the input.
    with_repeats = on_time + [on_time[i % len(on_time)] for i in repeats]
    steps = _run(with_repeats, list(range(len(with_repeats))), batch, restarts)

    unique, sessions = _expected(on_time)
    assert steps.pipeline.get("valid", 0) == len(unique)
    assert steps.pipeline.get("duplicates", 0) == len(repeats)
    assert steps.pipeline.get("late", 0) == 0
    assert steps.pipeline.get("late_for_sessions", 0) == 0
    got = sorted((s.session_id, s.identity, s.event_ids) for s in steps.sessions)
    want = sorted((s.sid, s.identity, tuple(e.event_id for e in s.events)) for s in sessions)
    assert got == want
    # The archive's identity of each event is one the input could have told at the time.
    possible = ingest_identities(unique)
    assert sorted(a.event.event_id for a in steps.archived) == sorted(unique)
    for arrival in steps.archived:
        known = arrival.event.customer_id or arrival.known_customer
        identity = known or f"device:{arrival.event.device_id}"
        assert identity in possible[arrival.event.event_id].possible


def _sessions_of(events: list[tuple[int, str, str | None, str | None]]) -> list[tuple[str, ...]]:
    bodies = [_event(i, *fields) for i, fields in enumerate(events)]
    steps = _run(bodies, list(range(len(bodies))), 2, set())
    return sorted((s.identity, *s.event_ids) for s in steps.sessions)


def test_the_anonymous_start_belongs_to_whoever_logs_in() -> None:
    sessions = _sessions_of(
        [
            (0, "screen_view", None, "D1"),
            (10 * MIN, "screen_view", None, "D1"),
            (20 * MIN, "login", "C1", "D1"),
            (200 * MIN, "screen_view", None, "D1"),  # later: the device stays linked
            (201 * MIN, "screen_view", None, "D2"),  # never logs in: the device itself
        ]
    )
    assert sessions == [("C1", "e000", "e001", "e002"), ("C1", "e003"), ("device:D2", "e004")]


def test_a_gap_over_30_minutes_before_the_login_breaks_the_stitch() -> None:
    sessions = _sessions_of([(0, "screen_view", None, "D1"), (31 * MIN, "login", "C1", "D1")])
    assert sessions == [("C1", "e001"), ("device:D1", "e000")]


def test_a_login_exactly_one_session_gap_later_still_stitches() -> None:
    """PRODUCT.md: a gap *over* 30 minutes breaks the chain; exactly 30 does not."""
    sessions = _sessions_of([(0, "screen_view", None, "D1"), (30 * MIN, "login", "C1", "D1")])
    assert sessions == [("C1", "e000", "e001")]


def test_a_start_stitched_after_the_allowance_is_counted_late_for_sessions_not_lost() -> None:
    # The anonymous event at 25 minutes waits for the login at 55; by then the customer's
    # session from minute 0 has closed under a 15-minute allowance.
    events = [
        (0, "screen_view", "C1", "D1"),
        (25 * MIN, "screen_view", None, "D1"),
        (55 * MIN, "screen_view", "C1", "D1"),
        (55 * MIN, "login", "C1", "D1"),
    ]
    bodies = [_event(i, *fields) for i, fields in enumerate(events)]
    steps = _run(bodies, list(range(len(bodies))), 1, set(), _settings(stitch_allowance_s=900))
    assert steps.pipeline["late_for_sessions"] == 1
    sessions = sorted((s.identity, *s.event_ids) for s in steps.sessions)
    assert sessions == [("C1", "e000"), ("C1", "e002", "e003")]
    exact = _run(bodies, list(range(len(bodies))), 1, set())
    assert "late_for_sessions" not in exact.pipeline
    assert [s.event_ids for s in exact.sessions] == [("e000", "e001", "e002", "e003")]


def test_an_anonymous_start_waits_while_a_login_may_still_arrive_within_the_gap() -> None:
    # The login (1 ms before the customer's next event) arrives after that event, within the
    # lateness; the anonymous start 30 minutes before it is stitched, not left to the device.
    events = [
        (0, "screen_view", "C1", "D1"),
        (55 * MIN - 1, "screen_view", None, "D2"),
        (85 * MIN, "screen_view", "C1", "D2"),
        (85 * MIN - 1, "login", "C1", "D2"),
    ]
    bodies = [_event(i, *fields) for i, fields in enumerate(events)]
    steps = _run(bodies, list(range(len(bodies))), 1, set())
    sessions = sorted((s.identity, *s.event_ids) for s in steps.sessions)
    assert sessions == [("C1", "e000"), ("C1", "e001", "e003", "e002")]
