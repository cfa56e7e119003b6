"""Sessions (PRODUCT.md, "Sessions"): maximal runs of one identity's app events, in
``(event_time, event_id)`` order, with no gap over the session gap; across apps, devices and
midnight. A session is closed, and final, once the watermark is past its last event by more than
the gap (plus however long identities may still be decided upstream).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable

import msgspec


def session_id(identity: str, first_ms: int, first_event_id: str) -> str:
    """Deterministic id of a session: a short hash of its identity and first event."""
    digest = hashlib.blake2b(
        f"{identity}\x1f{first_ms}\x1f{first_event_id}".encode(), digest_size=10
    )
    return digest.hexdigest()


class SessionEvent(msgspec.Struct, frozen=True, gc=False, array_like=True, order=True):
    """What the journeys keep of one event (ordered by time, then id, which are unique)."""

    event_ms: int
    event_id: str
    event_type: str
    channel: str = "web"
    device_id: str | None = None
    customer_id: str | None = None
    """As sent: None for an anonymous event, whatever identity it was given."""
    app: str | None = None
    app_version: str | None = None
    os: str | None = None
    screen: str | None = None
    element: str | None = None
    form: str | None = None
    error_code: str | None = None

    @property
    def in_session(self) -> bool:
        """App events (mobile, web) make sessions; ATM, branch and core events do not."""
        return self.channel in ("mobile", "web")


class ClosedSession(msgspec.Struct, frozen=True, gc=False):
    """A final session."""

    session_id: str
    identity: str
    start_ms: int
    end_ms: int
    events: tuple[SessionEvent, ...]

    @property
    def exit_screen(self) -> str | None:
        """The screen of the session's last ``screen_view``."""
        for event in reversed(self.events):
            if event.event_type == "screen_view":
                return event.screen
        return None

    @property
    def converted(self) -> bool:
        """At least one ``conversion`` event."""
        return any(e.event_type == "conversion" for e in self.events)


class IdentitySessions:
    """The open (not yet final) events of one identity."""

    def __init__(
        self, identity: str, gap_ms: int, events: list[SessionEvent] | None = None
    ) -> None:
        """Sessions of ``identity`` with the given gap, from saved open events if any."""
        self.identity = identity
        self.gap_ms = gap_ms
        self.events: list[SessionEvent] = events or []

    def add(self, events: Iterable[SessionEvent]) -> None:
        """Add events in any order."""
        for event in events:
            bisect.insort(self.events, event)

    def add_one(self, event: SessionEvent) -> bool:
        """Add one event (appended when it is the newest, as it mostly is); return whether it
        went in before the newest (it may have started or ended an earlier session)."""
        events = self.events
        if event > events[-1]:
            events.append(event)
            return False
        bisect.insort(events, event)
        return True

    def first_end_ms(self) -> int:
        """The last event time of the earliest open session (its events up to the first gap)."""
        events = self.events
        gap = self.gap_ms
        previous = events[0].event_ms
        for event in itertools.islice(events, 1, None):
            if event.event_ms - previous > gap:
                break
            previous = event.event_ms
        return previous

    def close(self, safe_ms: int) -> list[ClosedSession]:
        """Close the sessions that no event at or after ``safe_ms`` can still join.

        Args:
            safe_ms: every event this identity will still receive is at or after this time.
        """
        closed: list[ClosedSession] = []
        events = self.events
        if not events:
            return closed
        gap = self.gap_ms
        times = [event.event_ms for event in events]
        # Where each session ends: before every gap over the session gap, and at the last event.
        ends = [index for index, (a, b) in enumerate(itertools.pairwise(times), 1) if b - a > gap]
        ends.append(len(times))
        start = 0
        for index in ends:
            last_ms = times[index - 1]
            if safe_ms - last_ms <= gap:
                break
            run = tuple(events[start:index])
            closed.append(
                ClosedSession(
                    session_id(self.identity, run[0].event_ms, run[0].event_id),
                    self.identity,
                    run[0].event_ms,
                    last_ms,
                    run,
                )
            )
            start = index
        if start:
            del events[:start]
        return closed
