"""A customer's recent behaviour as a rule sees it: their recent events and current session.

The engine keeps, per customer, the last few events (a bounded number within a bounded time, see
``CLICKSTREAM_OFFERS_HISTORY_*``) in recoverable state. A rule gets a read-only :class:`History`
of the events before the trigger.
"""

from __future__ import annotations

from collections.abc import Sequence

from offers.api import Duration, duration_ms
from state.contract import SESSION_CHANNELS, Event, PropertyValue
from state.moments import NEVER


class History:
    """The customer's events before the trigger, oldest first."""

    __slots__ = ("_events", "_gap_ms", "_now_ms", "_times")

    def __init__(
        self, events: Sequence[Event], times: Sequence[int], now_ms: int, session_gap_ms: int
    ) -> None:
        """A view of ``events`` (with their times in ms) as of ``now_ms``, the trigger's time."""
        self._events = events
        self._times = times
        self._now_ms = now_ms
        self._gap_ms = session_gap_ms

    @property
    def events(self) -> Sequence[Event]:
        """Every remembered event before the trigger, oldest first."""
        return self._events

    @property
    def session(self) -> list[Event]:
        """The app (mobile and web) events of the current session: those since the last gap over
        the session gap, up to the trigger.
        """
        run: list[Event] = []
        newer = self._now_ms
        for event, ms in zip(reversed(self._events), reversed(self._times), strict=True):
            if event.channel not in SESSION_CHANNELS:
                continue
            if newer - ms > self._gap_ms:
                break
            run.append(event)
            newer = ms
        run.reverse()
        return run

    def matching(
        self,
        event_type: str | None = None,
        *,
        within: Duration | None = None,
        channel: str | None = None,
        screen: str | None = None,
        element: str | None = None,
        form: str | None = None,
        **properties: PropertyValue,
    ) -> list[Event]:
        """The remembered events with every given value, within ``within`` before the trigger."""
        since = NEVER if within is None else self._now_ms - duration_ms(within, "within")
        found = []
        for event, ms in zip(self._events, self._times, strict=True):
            if ms < since:
                continue
            if event_type is not None and event.event_type != event_type:
                continue
            if channel is not None and event.channel != channel:
                continue
            if screen is not None and event.screen != screen:
                continue
            if element is not None and event.element != element:
                continue
            if form is not None and event.form != form:
                continue
            props = event.properties
            if any(props.get(name) != value for name, value in properties.items()):
                continue
            found.append(event)
        return found

    def count(
        self,
        event_type: str | None = None,
        *,
        within: Duration | None = None,
        **match: PropertyValue,
    ) -> int:
        """How many remembered events :meth:`matching` would return."""
        return len(self.matching(event_type, within=within, **match))  # type: ignore[arg-type]

    def last(self, event_type: str | None = None, **match: PropertyValue) -> Event | None:
        """The newest remembered event with these values, or None."""
        found = self.matching(event_type, **match)  # type: ignore[arg-type]
        return found[-1] if found else None
