"""What an offers shard keeps about one customer: recent events, offers counted, pending offers.

This is recoverable state: :class:`CustomerOffers` is encoded as it is in the shard's snapshot,
so its fields (names, order, types) are the snapshot's layout.
"""

from __future__ import annotations

import msgspec

from offers.api import Campaign
from offers.history import History
from offers.records import Pending
from state.contract import Event
from state.moments import NEVER

ALL_CAMPAIGNS = "*"
"""The key of :attr:`CustomerOffers.counts` that counts offers over all campaigns."""


class CustomerOffers(msgspec.Struct, gc=False):
    """Recoverable offer state of one customer."""

    events: list[Event] = []
    times: list[int] = []
    """Event times (ms) of ``events``, ascending."""
    counts: dict[int, dict[str, int]] = {}
    """Bank calendar day (ordinal) → campaign id (``*`` for all) → offers counted."""
    last_offer: dict[str, int] = {}
    """Campaign id → trigger time of its last offer to this customer (sent or held out)."""
    pending: list[Pending] = []
    newest_ms: int = NEVER

    def remember(self, event: Event, event_ms: int, keep_events: int, keep_ms: int) -> None:
        """Add an event to the history in time order; keep the newest ``keep_events`` at most,
        none older than ``keep_ms`` before the newest.
        """
        events, times = self.events, self.times
        if not times or event_ms >= times[-1]:
            events.append(event)
            times.append(event_ms)
        else:
            at = len(times)
            while at and times[at - 1] > event_ms:
                at -= 1
            events.insert(at, event)
            times.insert(at, event_ms)
        if event_ms > self.newest_ms:
            self.newest_ms = event_ms
        oldest = self.newest_ms - keep_ms
        drop = max(0, len(times) - keep_events)
        while drop < len(times) and times[drop] < oldest:
            drop += 1
        if drop:
            del events[:drop]
            del times[:drop]

    def history_before(self, event_ms: int, event_id: str, session_gap_ms: int) -> History:
        """The customer's remembered events before this one (by time, then event id)."""
        times = self.times
        end = len(times)
        while end and (times[end - 1] > event_ms):
            end -= 1
        events = self.events[:end]
        # An equal time orders by event id, as everywhere else.
        while events and times[len(events) - 1] == event_ms and events[-1].event_id >= event_id:
            events.pop()
        return History(events, times[: len(events)], event_ms, session_gap_ms)

    def cancel_seen(self, campaign: Campaign, pending: Pending) -> bool:
        """Whether a cancel event after the trigger and by the send time has been seen already
        (it was read before the trigger, from another batch or partition).
        """
        if not campaign.cancel_if:
            return False
        times, events = self.times, self.events
        at = len(times)
        while at and times[at - 1] > pending.trigger_ms:
            at -= 1
            if times[at] <= pending.send_at_ms and any(
                t.matches(events[at]) for t in campaign.cancel_if
            ):
                return True
        return False
