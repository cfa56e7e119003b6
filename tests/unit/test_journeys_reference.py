"""Identity stitching and sessions, streamed, against a small obviously-correct reference.

The reference reads PRODUCT.md's definitions literally over the whole input at once; the
streaming logic sees the events in a disordered arrival order (within the allowed lateness),
in batches, deciding as the watermark moves. Both must give the same sessions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.identity import DeviceEvent, DeviceIdentities, device_identity
from operators.sessions import ClosedSession, IdentitySessions, SessionEvent, session_id

GAP = 30 * 60_000
LATENESS = 5 * 60_000


@dataclass(frozen=True)
class Ev:
    event_id: str
    ms: int
    event_type: str
    customer_id: str | None
    device_id: str | None


def reference_identity(event: Ev, events: list[Ev]) -> str:
    """PRODUCT.md: customer_id; else latest login at or before; else stitched; else device."""
    if event.customer_id is not None:
        return event.customer_id
    assert event.device_id is not None
    on_device = sorted(
        (e for e in events if e.device_id == event.device_id), key=lambda e: (e.ms, e.event_id)
    )
    key = (event.ms, event.event_id)
    before = [e for e in on_device if e.event_type == "login" and (e.ms, e.event_id) <= key]
    if before:
        assert before[-1].customer_id is not None
        return before[-1].customer_id
    previous = event.ms
    for later in (e for e in on_device if (e.ms, e.event_id) > key):
        if later.ms - previous > GAP:
            break
        previous = later.ms
        if later.event_type == "login":
            assert later.customer_id is not None
            return later.customer_id
    return device_identity(event.device_id)


def reference_sessions(events: list[Ev]) -> set[tuple[str, str, tuple[str, ...]]]:
    by_identity: dict[str, list[Ev]] = {}
    for event in events:
        by_identity.setdefault(reference_identity(event, events), []).append(event)
    sessions = set()
    for identity, own in by_identity.items():
        own.sort(key=lambda e: (e.ms, e.event_id))
        run = [own[0]]
        for event in own[1:]:
            if event.ms - run[-1].ms > GAP:
                sessions.add(_session(identity, run))
                run = []
            run.append(event)
        sessions.add(_session(identity, run))
    return sessions


def _session(identity: str, run: list[Ev]) -> tuple[str, str, tuple[str, ...]]:
    return (
        session_id(identity, run[0].ms, run[0].event_id),
        identity,
        tuple(e.event_id for e in run),
    )


def streamed_sessions(arrivals: list[Ev], batch: int) -> set[tuple[str, str, tuple[str, ...]]]:
    devices: dict[str, DeviceIdentities] = {}
    identities: dict[str, IdentitySessions] = {}
    newest = -(2**62)
    closed = set()

    def to_identity(identity: str, event: Ev) -> None:
        sessions = identities.setdefault(identity, IdentitySessions(identity, GAP))
        sessions.add([SessionEvent(event.ms, event.event_id, event.event_type)])

    by_id = {e.event_id: e for e in arrivals}
    for start in range(0, len(arrivals), batch):
        for event in arrivals[start : start + batch]:
            newest = max(newest, event.ms)
            if event.device_id is not None:
                device = devices.setdefault(event.device_id, DeviceIdentities(event.device_id, GAP))
                is_login = event.event_type == "login"
                device.add([DeviceEvent(event.ms, event.event_id, event.customer_id, is_login)])
            if event.customer_id is not None:
                to_identity(event.customer_id, event)
        watermark = newest - LATENESS
        for device in devices.values():
            for decided in device.resolve(watermark):
                to_identity(decided.identity, by_id[decided.event_id])
        oldest_pending = min(
            (d.state.pending[0][0] for d in devices.values() if d.state.pending),
            default=watermark,
        )
        safe = min(watermark, oldest_pending)
        for sessions in identities.values():
            for session in sessions.close(safe):
                closed.add(_closed(session))
    # End of input: the watermark runs past everything.
    for device in devices.values():
        for decided in device.resolve(2**62):
            to_identity(decided.identity, by_id[decided.event_id])
    for sessions in identities.values():
        for session in sessions.close(2**62):
            closed.add(_closed(session))
    return closed


def _closed(session: ClosedSession) -> tuple[str, str, tuple[str, ...]]:
    return session.session_id, session.identity, tuple(e.event_id for e in session.events)


event_strategy = st.tuples(
    st.integers(0, 240 * 60_000),  # time within 4 hours
    st.sampled_from(["screen_view", "click", "login", "conversion"]),
    st.sampled_from(["C1", "C2", None, None]),
    st.sampled_from(["D1", "D2", "D3", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(event_strategy, min_size=1, max_size=60), st.integers(1, 10), st.randoms())
def test_streamed_sessions_equal_the_reference(
    raw: list[tuple[int, str, str | None, str | None]], batch: int, rnd: random.Random
) -> None:
    events = []
    for index, (ms, kind, customer_id, device) in enumerate(raw):
        device_id = "D1" if customer_id is None and device is None else device
        login_ok = customer_id is not None and device_id is not None
        event_type = "screen_view" if kind == "login" and not login_ok else kind
        events.append(Ev(f"e{index:03d}", ms, event_type, customer_id, device_id))
    # Arrival order: by time, each event possibly overtaken by ones up to the lateness newer.
    arrivals = sorted(events, key=lambda e: e.ms + rnd.randint(0, LATENESS - 1))
    newest = -(2**62)
    on_time = []
    for event in arrivals:  # events later than the watermark are not part of the figures
        if event.ms >= newest - LATENESS:
            on_time.append(event)
        newest = max(newest, event.ms)
    assert streamed_sessions(on_time, batch) == reference_sessions(on_time)


def test_the_anonymous_start_belongs_to_whoever_logs_in() -> None:
    events = [
        Ev("a1", 0, "screen_view", None, "D1"),
        Ev("a2", 10 * 60_000, "screen_view", None, "D1"),
        Ev("l1", 20 * 60_000, "login", "C1", "D1"),
        Ev("a3", 200 * 60_000, "screen_view", None, "D1"),  # later: the device stays linked
        Ev("x1", 0, "screen_view", None, "D2"),  # never logs in: the device itself
    ]
    assert streamed_sessions(events, 2) == reference_sessions(events)
    identities = {s[1]: s[2] for s in reference_sessions(events)}
    assert identities["device:D2"] == ("x1",)
    assert ("a1", "a2", "l1") in [s[2] for s in reference_sessions(events)]
    assert reference_identity(events[3], events) == "C1"


def test_a_gap_over_30_minutes_before_the_login_breaks_the_stitch() -> None:
    events = [
        Ev("a1", 0, "screen_view", None, "D1"),
        Ev("l1", 31 * 60_000, "login", "C1", "D1"),
    ]
    assert reference_identity(events[0], events) == "device:D1"
    assert streamed_sessions(events, 1) == reference_sessions(events)
