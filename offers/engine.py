"""One offers shard: its customers' offer state, fed events and releasing offers when due.

The shard orchestrates; the parts are modules of their own:

- :mod:`offers.rules` runs the campaigns' rules with a time budget;
- :mod:`offers.decisions` is the decision chain (consent, cooldown, caps, priorities, holdout
  and control groups, the release checks), in the order its docstring gives;
- :mod:`offers.calendar` has the bank's days and quiet hours;
- :mod:`offers.figures` counts the decisions under their Redis keys;
- :mod:`offers.releases` knows when pending offers are due;
- :mod:`offers.customers` is the state kept per customer, saved by :meth:`OffersShard.snapshot`.

Time: decisions use event time. A pending offer is released when every input partition has
passed its send time, so a replay of the same input decides the same; if the input goes quiet
it is released by the wall clock (its decision time plus its wait, plus a grace).
"""

from __future__ import annotations

import time

import msgspec

from offers.api import Campaign
from offers.calendar import MINUTE_MS, BankCalendar
from offers.config import OffersConfig, ProfileLookup
from offers.customers import CustomerOffers
from offers.decisions import DecisionChain, OffersResult
from offers.loader import CampaignSet
from offers.records import CANCELLED
from offers.releases import ReleaseSchedule
from offers.rules import RuleRunner
from state.moments import ENDLESS, NEVER
from state.records import Arrival
from state.snapshots import decode_snapshot, encode_snapshot

__all__ = [
    "CustomerOffers",
    "OffersConfig",
    "OffersResult",
    "OffersShard",
    "OffersSnapshot",
    "ProfileLookup",
]

SNAPSHOT_VERSION = 1
QUIET_AFTER_RESTART_MS = 60_000
"""After a restart, the wall clock releases nothing for this long: a backlog may be coming."""
_encode = msgspec.msgpack.Encoder().encode


class OffersSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one offers shard."""

    version: int
    customers: dict[str, CustomerOffers]


class _OffersSnapshotWrite(msgspec.Struct, frozen=True):
    """:class:`OffersSnapshot` as written: each customer's state already encoded."""

    version: int
    customers: dict[str, msgspec.Raw]


class OffersShard:
    """Offer state of the customers of one shard, and the decisions over it."""

    def __init__(self, config: OffersConfig, snapshot: bytes | None = None) -> None:
        """Create the shard, empty or from a snapshot."""
        self.config = config
        self.calendar = BankCalendar(config.timezone, config.quiet_hours)
        self.customers: dict[str, CustomerOffers] = {}
        self._runner = RuleRunner(config.rule_timeout_ms)
        self._chain = DecisionChain(config, self.calendar, self._runner)
        self._schedule = ReleaseSchedule()
        self._low_ms = NEVER
        self._freed_minute = -1
        self._dirty: set[str] = set()
        """Customers changed since the last snapshot."""
        self._encoded: dict[str, msgspec.Raw] = {}
        # Wall time when the input last moved on (None: not since a restart).
        self._progress_at_ms: int | None = None
        self._started_ms = int(time.time() * 1000)
        if snapshot is not None:
            state = decode_snapshot(snapshot, OffersSnapshot, SNAPSHOT_VERSION)
            self.customers = dict(state.customers)
            self._dirty = set(self.customers)
            for customer_id, customer in self.customers.items():
                for pending in customer.pending:
                    self._schedule.add(customer_id, pending)

    # --- the stream -----------------------------------------------------------------------------

    def process(
        self,
        arrivals: list[Arrival],
        campaigns: CampaignSet,
        profiles: ProfileLookup,
        low_ms: int,
        now_ms: int,
    ) -> OffersResult:
        """Take a batch of customers' events, then release the offers that are due.

        The batch is taken in event-time order (equal times by event id), whatever order its
        identity shards sent it in; a cancel event that arrived before its trigger (from
        another batch, shard or partition) is found in the customer's history when the offer
        is held.

        Args:
            arrivals: events with a customer id.
            campaigns: the campaigns running now.
            profiles: customer id → profile, in batches.
            low_ms: how far every input partition has got (event time).
            now_ms: the wall clock.
        """
        result = OffersResult([], [], {}, {})
        arrivals = sorted(arrivals, key=_time_order)
        # First the campaigns each event may trigger (the index is cheap), so that profiles are
        # read only for the customers who have a candidate.
        no_candidates: list[Campaign] = []
        candidates_of = [
            campaigns.candidates(a.event)
            if a.event.customer_id is not None and campaigns.may_trigger(a.event.event_type)
            else no_candidates
            for a in arrivals
        ]
        wanted = {
            a.event.customer_id
            for a, candidates in zip(arrivals, candidates_of, strict=True)
            if candidates and a.event.customer_id is not None
        }
        looked_up = profiles(wanted) if wanted else {}
        if looked_up:
            self._runner.prepare()
        dirty = self._dirty
        config = self.config
        for arrival, candidates in zip(arrivals, candidates_of, strict=True):
            customer_id = arrival.event.customer_id
            if customer_id is None:
                continue
            state = self.customers.get(customer_id)
            if state is None:
                state = self.customers[customer_id] = CustomerOffers([], [], {}, {}, [])
            dirty.add(customer_id)
            event, event_ms = arrival.event, arrival.event_ms
            for pending in state.pending:
                waiting = pending.trigger_ms < event_ms <= pending.send_at_ms
                if waiting and pending.cancelled is None:
                    campaign = campaigns.by_id.get(pending.campaign_id)
                    if campaign is not None and any(t.matches(event) for t in campaign.cancel_if):
                        pending.cancelled = CANCELLED
            if candidates:
                profile = looked_up[customer_id]
                held = self._chain.decide(arrival, state, profile, candidates, now_ms, result)
                for pending in held:
                    self._schedule.add(customer_id, pending)
            state.remember(event, event_ms, config.history_events, config.history_ms)
        if low_ms > self._low_ms:
            self._low_ms = low_ms
            self._progress_at_ms = now_ms
        self.release(campaigns, profiles, now_ms, result)
        return result

    # --- releases -------------------------------------------------------------------------------

    def next_wall_due_ms(self) -> int | None:
        """When the earliest pending offer is due by the wall clock (quiet input)."""
        due = self._schedule.next_wall_due_ms(self._is_pending)
        return None if due is None else due + self.config.release_grace_ms

    def _is_pending(self, customer_id: str, offer: str) -> bool:
        state = self.customers.get(customer_id)
        return state is not None and any(p.offer_id == offer for p in state.pending)

    def release(
        self,
        campaigns: CampaignSet,
        profiles: ProfileLookup,
        now_ms: int,
        result: OffersResult | None = None,
        *,
        everything: bool = False,
    ) -> OffersResult:
        """Send (or suppress) every pending offer that is due, then free idle customers.

        An offer is due when the input has passed its send time or, while the input is quiet
        (no progress for the grace period; never in the first minute after a restart, when a
        backlog may be on its way), when the wall clock has. ``everything`` releases them all
        (the end of a bounded input).
        """
        result = result if result is not None else OffersResult([], [], {}, {})
        grace = self.config.release_grace_ms
        since = self._progress_at_ms
        quiet = (
            now_ms - since >= grace
            if since is not None
            else now_ms - self._started_ms >= QUIET_AFTER_RESTART_MS
        )
        due = self._schedule.take_due(
            ENDLESS if everything else self._low_ms, now_ms - grace if quiet else NEVER
        )
        if due:
            looked_up = profiles(due)
            for customer_id, offers in due.items():
                state = self.customers.get(customer_id)
                if state is None:
                    continue
                self._dirty.add(customer_id)
                keep = []
                for pending in state.pending:
                    if pending.offer_id in offers:
                        self._chain.release(
                            state,
                            pending,
                            campaigns.by_id.get(pending.campaign_id),
                            looked_up.get(pending.customer_id),
                            now_ms,
                            result,
                        )
                    else:
                        keep.append(pending)
                state.pending = keep
        self._free_idle(campaigns)
        return result

    def _free_idle(self, campaigns: CampaignSet) -> None:
        """Once per minute of input: forget past days' caps and cooldowns that ran out, then
        customers with nothing left (no pending offer, no recent event, no cap, no cooldown).
        """
        minute = self._low_ms // MINUTE_MS
        if minute == self._freed_minute:
            return
        self._freed_minute = minute
        horizon = self._low_ms - self.config.history_ms
        yesterday = self.calendar.local_day(max(0, self._low_ms)).toordinal() - 1
        idle = []
        for customer_id, state in self.customers.items():
            if state.counts and min(state.counts) < yesterday:
                state.counts = {d: c for d, c in state.counts.items() if d >= yesterday}
                self._dirty.add(customer_id)
            if state.last_offer:
                live = {
                    campaign_id: ms
                    for campaign_id, ms in state.last_offer.items()
                    if campaign_id in campaigns.by_id
                    and self._low_ms - ms < campaigns.by_id[campaign_id].cooldown_ms
                }
                if len(live) != len(state.last_offer):
                    state.last_offer = live
                    self._dirty.add(customer_id)
            if state.pending or state.newest_ms >= horizon or state.counts or state.last_offer:
                continue
            idle.append(customer_id)
        for customer_id in idle:
            del self.customers[customer_id]
            self._encoded.pop(customer_id, None)
            self._dirty.discard(customer_id)

    # --- the snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes; only the customers changed since the last one are encoded
        again (most customers in state are waiting out their history window or a cooldown).
        """
        encoded = self._encoded
        for customer_id in self._dirty:
            state = self.customers.get(customer_id)
            if state is None:
                encoded.pop(customer_id, None)
            else:
                encoded[customer_id] = msgspec.Raw(_encode(state))
        self._dirty.clear()
        return encode_snapshot(_OffersSnapshotWrite(SNAPSHOT_VERSION, encoded))


def _time_order(arrival: Arrival) -> tuple[int, str]:
    """Event time, then event id: the order every definition uses."""
    return arrival.event_ms, arrival.event.event_id
