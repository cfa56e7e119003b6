"""The decision engine of one offers shard: which matches become offers, and when they go out.

For each event of a known customer, the campaigns whose triggers match run their rule with the
customer's profile and recent history. Every match is decided in this order:

1. ``expired`` - the trigger is older than the maximum trigger age (a back-fill of old events
   never texts anyone);
2. ``no_consent`` - the customer has not consented to the campaign's channel (unknown → no);
3. ``cooldown`` - the campaign went to this customer less than its cooldown before;
4. ``frequency_cap`` / ``daily_cap`` - the campaign's cap per customer per calendar day, then the
   cap over all campaigns (days in the bank's time zone);
5. ``lower_priority`` - the event already has the most offers allowed per event (campaigns are
   tried highest priority first, so only matches that could have been sent lose a slot).

A match that passes is ``pending``: held in state until its send time (the trigger's time plus
the campaign's delay, moved out of quiet hours) and re-checked then: a cancel event in the
meantime (by default a conversion), a withdrawn consent or an ended campaign suppresses it. A
customer in the global holdout or in the campaign's control group (stable hashes) goes through
every step alike, and is logged as ``held_out`` instead of being sent.

Time: decisions use event time. A pending offer is released when every input partition has
passed its send time, so a replay of the same input decides the same; if the input goes quiet
it is released by the wall clock (its decision time plus its wait, plus a grace).
"""

from __future__ import annotations

import hashlib
import heapq
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from offers.api import PROFILE_FIELDS, Campaign, as_params
from offers.history import History
from offers.loader import CampaignSet
from offers.records import (
    CANCELLED,
    CONTROL_GROUP,
    COOLDOWN,
    DAILY_CAP,
    DECISION_SCHEMA,
    EXPIRED,
    FREQUENCY_CAP,
    GLOBAL_HOLDOUT,
    LOWER_PRIORITY,
    NO_CONSENT,
    QUIET_HOURS,
    RULE_RAISED,
    RULE_TIMEOUT,
    SEND_DELAY,
    Decision,
    OfferMessage,
    Pending,
    iso_ms,
    offer_id,
)
from state.contract import Event
from state.customer_store import CustomerProfile, parse_consent
from state.moments import ENDLESS, NEVER
from state.records import Arrival
from state.redis_keys import (
    OFFERS_LATENCY,
    OFFERS_MATCHED,
    OFFERS_REASONS,
    campaign,
    offers_key,
)
from state.snapshots import decode_snapshot, encode_snapshot
from state.totals import HASH, FigureDeltas, count

SNAPSHOT_VERSION = 1
_encode = msgspec.msgpack.Encoder().encode
DAY_MS = 86_400_000
MINUTE_MS = 60_000
ALL = "*"
LATENCY_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 120, 250, 1000)

ProfileLookup = Callable[[Iterable[str]], Mapping[str, CustomerProfile]]
OfferMinutes = dict[int, dict[str, int]]
"""Offers by minute (epoch ms of the minute) and outcome: sent, held_out, suppressed."""


class OffersConfig(msgspec.Struct, frozen=True):
    """What the engine needs to know; none of it is state."""

    prefix: str = "cs"
    timezone: str = "Europe/Warsaw"
    quiet_hours: tuple[int, int] | None = (21 * 60, 8 * 60)
    """(start, end) in minutes of the bank's day; offers due inside are held until ``end``."""
    max_offers_per_event: int = 1
    daily_cap: int = 3
    """Offers per customer per calendar day over all campaigns."""
    holdout_share: float = 0.0
    history_events: int = 20
    history_ms: int = 6 * 3600_000
    session_gap_ms: int = 30 * 60_000
    max_trigger_age_ms: int = 3600_000
    """Against the wall clock; 0 turns it off (back-tests)."""
    rule_timeout_ms: int = 100
    release_grace_ms: int = 2000


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


class OffersSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one offers shard."""

    version: int
    customers: dict[str, CustomerOffers]


class _OffersSnapshotWrite(msgspec.Struct, frozen=True):
    """:class:`OffersSnapshot` as written: each customer's state already encoded."""

    version: int
    customers: dict[str, msgspec.Raw]


class OffersResult(msgspec.Struct, gc=False):
    """What one call decided."""

    offers: list[OfferMessage]
    decisions: list[Decision]
    figures: FigureDeltas
    minutes: OfferMinutes


class RuleTimeoutError(Exception):
    """Raised inside a rule that ran past its time budget."""


class _Alarm:
    """The process's one SIGALRM handler: it interrupts the rule that armed it, if any."""

    armed = False
    installed = False

    @classmethod
    def install(cls) -> bool:
        """Install the handler (on the main thread only); True when rules can be interrupted."""
        if not hasattr(signal, "setitimer"):
            return False
        if threading.current_thread() is not threading.main_thread():
            return cls.installed
        if signal.getsignal(signal.SIGALRM) != cls._on_alarm:
            signal.signal(signal.SIGALRM, cls._on_alarm)
            cls.installed = True
        return True

    @classmethod
    def _on_alarm(cls, _signum: int, _frame: object) -> None:
        if cls.armed:
            raise RuleTimeoutError


class RuleRunner:
    """Runs a rule with a time budget.

    On the main thread (a single-worker job) a SIGALRM timer interrupts a rule that runs too
    long; on other threads the time is checked afterwards (the answer is discarded the same).
    """

    def __init__(self, timeout_ms: int) -> None:
        """Runner with the given budget per call."""
        self._timeout_s = timeout_ms / 1000
        self._timer = _Alarm.install()

    def prepare(self) -> None:
        """Before a batch of rules: make sure the timer's handler is (still) ours."""
        self._timer = _Alarm.install()

    def run(
        self, campaign: Campaign, event: Event, profile: CustomerProfile, history: History
    ) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """(template parameters or None, error reason, error detail)."""
        timer = self._timer
        started = time.perf_counter()
        try:
            if timer:
                _Alarm.armed = True
                signal.setitimer(signal.ITIMER_REAL, self._timeout_s)
            try:
                result = campaign.rule(event, profile, history)
            finally:
                _Alarm.armed = False
                if timer:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if time.perf_counter() - started > self._timeout_s:
                raise RuleTimeoutError
            return as_params(result), None, None
        except RuleTimeoutError:
            return None, RULE_TIMEOUT, f"the rule ran over {self._timeout_s * 1000:.0f} ms"
        except Exception as exc:  # a rule's failure is a decision, not a crash
            return None, RULE_RAISED, f"{type(exc).__name__}: {exc}"[:500]


def _share_hash(*parts: str) -> float:
    """A stable number in [0, 1) for these parts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def consent_for(profile: CustomerProfile, channel: str) -> bool:
    """True only when the extract says yes for this channel (missing or unclear → False)."""
    if channel == "sms":
        return profile.sms_consent is True
    value, _ok = parse_consent(profile.extra.get(f"{channel}_consent"))
    return value is True


class _Match(msgspec.Struct, gc=False):
    campaign: Campaign
    params: dict[str, Any]
    text: str


class OffersShard:
    """Offer state of the customers of one shard, and the decisions over it."""

    def __init__(self, config: OffersConfig, snapshot: bytes | None = None) -> None:
        """Create the shard, empty or from a snapshot."""
        self.config = config
        self._zone = ZoneInfo(config.timezone)
        self.customers: dict[str, CustomerOffers] = {}
        self._by_send_at: list[tuple[int, str, str]] = []
        self._by_wall: list[tuple[int, str, str]] = []
        self._runner = RuleRunner(config.rule_timeout_ms)
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
                    self._schedule(customer_id, pending)

    # --- time -----------------------------------------------------------------------------------

    def local_day(self, ms: int) -> date:
        """The bank's calendar day at ``ms``."""
        return datetime.fromtimestamp(ms / 1000, self._zone).date()

    def send_time(self, ms: int) -> tuple[int, bool]:
        """``ms`` moved out of the quiet hours, and whether it moved."""
        quiet = self.config.quiet_hours
        if quiet is None:
            return ms, False
        local = datetime.fromtimestamp(ms / 1000, self._zone)
        minute = local.hour * 60 + local.minute
        start, end = quiet
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return ms, False
        day = local.date() if minute < end else local.date() + timedelta(days=1)
        opens = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=self._zone)
        return int(opens.astimezone(UTC).timestamp() * 1000), True

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
            for a, found in zip(arrivals, candidates_of, strict=True)
            if found and a.event.customer_id is not None
        }
        looked_up = profiles(wanted) if wanted else {}
        if looked_up:
            self._runner.prepare()
        dirty = self._dirty
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
                    found = campaigns.by_id.get(pending.campaign_id)
                    if found is not None and any(t.matches(event) for t in found.cancel_if):
                        pending.cancelled = CANCELLED
            if candidates:
                profile = looked_up[customer_id]
                self._decide(arrival, state, profile, candidates, now_ms, result)
            self._remember(state, event, event_ms)
        if low_ms > self._low_ms:
            self._low_ms = low_ms
            self._progress_at_ms = now_ms
        self.release(campaigns, profiles, now_ms, result)
        return result

    def _remember(self, state: CustomerOffers, event: Event, event_ms: int) -> None:
        events, times = state.events, state.times
        if not times or event_ms >= times[-1]:
            events.append(event)
            times.append(event_ms)
        else:
            at = len(times)
            while at and times[at - 1] > event_ms:
                at -= 1
            events.insert(at, event)
            times.insert(at, event_ms)
        if event_ms > state.newest_ms:
            state.newest_ms = event_ms
        keep = self.config.history_events
        oldest = state.newest_ms - self.config.history_ms
        drop = max(0, len(times) - keep)
        while drop < len(times) and times[drop] < oldest:
            drop += 1
        if drop:
            del events[:drop]
            del times[:drop]

    def _history(self, state: CustomerOffers, event_ms: int, event_id: str) -> History:
        times = state.times
        end = len(times)
        while end and (times[end - 1] > event_ms):
            end -= 1
        events = state.events[:end]
        # An equal time orders by event id, as everywhere else.
        while events and times[len(events) - 1] == event_ms and events[-1].event_id >= event_id:
            events.pop()
        return History(events, times[: len(events)], event_ms, self.config.session_gap_ms)

    def _decide(
        self,
        arrival: Arrival,
        state: CustomerOffers,
        profile: CustomerProfile,
        candidates: list[Campaign],
        now_ms: int,
        result: OffersResult,
    ) -> None:
        event, event_ms = arrival.event, arrival.event_ms
        customer_id = profile.customer_id
        day = self.local_day(event_ms)
        history = self._history(state, event_ms, event.event_id)
        matches: list[_Match] = []
        for found in candidates:
            if not found.valid_on(day):
                continue
            params, error, detail = self._runner.run(found, event, profile, history)
            if error is None and params is not None:
                # A profile field the extract leaves empty renders as nothing.
                values = {name: getattr(profile, name) or "" for name in PROFILE_FIELDS}
                values.update(params)
                try:
                    text = _tidy(found.render(values))
                except (KeyError, ValueError, IndexError, AttributeError) as exc:
                    error, detail = RULE_RAISED, f"template: {type(exc).__name__}: {exc}"
                else:
                    matches.append(_Match(found, params, text))
                    continue
            if error is not None:
                self._record(
                    result, found, customer_id, arrival, now_ms, "rule_error", error, detail
                )
        if not matches:
            return
        ordinal = day.toordinal()
        counts = state.counts.setdefault(ordinal, {})
        for old in [d for d in state.counts if d < ordinal - 1]:
            del state.counts[old]
        slots = self.config.max_offers_per_event
        max_age = self.config.max_trigger_age_ms
        for match in matches:
            found = match.campaign
            last = state.last_offer.get(found.id)
            reason = None
            if max_age and now_ms - event_ms > max_age:
                reason = EXPIRED
            elif not consent_for(profile, found.channel):
                reason = NO_CONSENT
            elif last is not None and 0 <= event_ms - last < found.cooldown_ms:
                reason = COOLDOWN
            elif counts.get(found.id, 0) >= found.daily_cap:
                reason = FREQUENCY_CAP
            elif counts.get(ALL, 0) >= self.config.daily_cap:
                reason = DAILY_CAP
            elif slots <= 0:
                reason = LOWER_PRIORITY
            if reason is not None:
                self._record(result, found, customer_id, arrival, now_ms, "suppressed", reason)
                continue
            slots -= 1
            counts[found.id] = counts.get(found.id, 0) + 1
            counts[ALL] = counts.get(ALL, 0) + 1
            state.last_offer[found.id] = event_ms
            self._hold(arrival, state, profile, match, ordinal, now_ms, result)

    def _held_out(self, customer_id: str, found: Campaign) -> str | None:
        if self.config.holdout_share and _share_hash("holdout", customer_id) < (
            self.config.holdout_share
        ):
            return GLOBAL_HOLDOUT
        if found.control_share and _share_hash(customer_id, found.id) < found.control_share:
            return CONTROL_GROUP
        return None

    def _hold(
        self,
        arrival: Arrival,
        state: CustomerOffers,
        profile: CustomerProfile,
        match: _Match,
        ordinal: int,
        now_ms: int,
        result: OffersResult,
    ) -> None:
        found = match.campaign
        event = arrival.event
        customer_id = profile.customer_id
        send_at, quiet = self.send_time(arrival.event_ms + found.send_delay_ms)
        pending = Pending(
            offer_id(customer_id, found.id, event.event_id),
            found.id,
            found.version,
            customer_id,
            found.channel,
            found.template,
            match.params,
            match.text,
            event.event_id,
            arrival.event_ms,
            now_ms,
            send_at,
            self._held_out(customer_id, found),
            ordinal,
            now_ms + max(0, send_at - arrival.event_ms),
        )
        if self._cancelled_already(state, found, pending):
            pending.cancelled = CANCELLED
        state.pending.append(pending)
        self._schedule(customer_id, pending)
        reason = QUIET_HOURS if quiet else SEND_DELAY
        self._record(
            result,
            found,
            customer_id,
            arrival,
            now_ms,
            "pending",
            reason,
            send_at_ms=send_at,
            offer=pending.offer_id,
        )

    @staticmethod
    def _cancelled_already(state: CustomerOffers, found: Campaign, pending: Pending) -> bool:
        """Whether a cancel event after the trigger and by the send time has been seen already
        (it was read before the trigger, from another batch or partition)."""
        if not found.cancel_if:
            return False
        times, events = state.times, state.events
        at = len(times)
        while at and times[at - 1] > pending.trigger_ms:
            at -= 1
            if times[at] <= pending.send_at_ms and any(
                t.matches(events[at]) for t in found.cancel_if
            ):
                return True
        return False

    def _schedule(self, customer_id: str, pending: Pending) -> None:
        heapq.heappush(self._by_send_at, (pending.send_at_ms, customer_id, pending.offer_id))
        heapq.heappush(self._by_wall, (pending.wall_due_ms, customer_id, pending.offer_id))

    # --- releases -------------------------------------------------------------------------------

    def next_wall_due_ms(self) -> int | None:
        """When the earliest pending offer is due by the wall clock (quiet input)."""
        while self._by_wall and not self._is_pending(*self._by_wall[0][1:]):
            heapq.heappop(self._by_wall)
        if not self._by_wall:
            return None
        return self._by_wall[0][0] + self.config.release_grace_ms

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
            now_ms - since >= grace if since is not None else now_ms - self._started_ms >= 60_000
        )
        wall_limit = now_ms - grace if quiet else NEVER
        due: dict[str, set[str]] = {}
        for heap, limit in (
            (self._by_send_at, ENDLESS if everything else self._low_ms),
            (self._by_wall, wall_limit),
        ):
            while heap and heap[0][0] <= limit:
                _, customer_id, offer = heapq.heappop(heap)
                due.setdefault(customer_id, set()).add(offer)
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
                        self._release_one(state, pending, looked_up, campaigns, now_ms, result)
                    else:
                        keep.append(pending)
                state.pending = keep
        self._free_idle(campaigns)
        return result

    def _release_one(
        self,
        state: CustomerOffers,
        pending: Pending,
        profiles: Mapping[str, CustomerProfile],
        campaigns: CampaignSet,
        now_ms: int,
        result: OffersResult,
    ) -> None:
        found = campaigns.by_id.get(pending.campaign_id)
        profile = profiles.get(pending.customer_id)
        reason = pending.cancelled
        if reason is None and (profile is None or not consent_for(profile, pending.channel)):
            reason = NO_CONSENT
        sent_on = self.local_day(pending.send_at_ms)
        if reason is None and (found is None or not found.valid_on(sent_on)):
            reason = EXPIRED
        if reason is not None:
            counts = state.counts.get(pending.day)
            if counts is not None:
                counts[pending.campaign_id] = counts.get(pending.campaign_id, 0) - 1
                counts[ALL] = counts.get(ALL, 0) - 1
            outcome = "suppressed"
        elif pending.held_out is not None:
            outcome, reason = "held_out", pending.held_out
        else:
            outcome = "sent"
            result.offers.append(
                OfferMessage(
                    offer_id=pending.offer_id,
                    campaign_id=pending.campaign_id,
                    campaign_version=pending.campaign_version,
                    customer_id=pending.customer_id,
                    channel=pending.channel,
                    phone=profile.phone if profile is not None else None,
                    template=pending.template,
                    params=pending.params,
                    text=pending.text,
                    trigger_event_id=pending.trigger_event_id,
                    trigger_time=iso_ms(pending.trigger_ms),
                    decided_at=iso_ms(pending.decided_at_ms),
                    send_at=iso_ms(pending.send_at_ms),
                )
            )
        decision = Decision(
            decision_id=f"{pending.offer_id}:release",
            offer_id=pending.offer_id,
            stage="release",
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            campaign_id=pending.campaign_id,
            campaign_version=pending.campaign_version,
            customer_id=pending.customer_id,
            trigger_event_id=pending.trigger_event_id,
            trigger_time=iso_ms(pending.trigger_ms),
            decided_at=iso_ms(now_ms),
            send_at=iso_ms(pending.send_at_ms),
            schema=DECISION_SCHEMA,
        )
        result.decisions.append(decision)
        self._count(result, pending.campaign_id, pending.trigger_ms, outcome, reason, "release")
        minute = pending.send_at_ms // MINUTE_MS * MINUTE_MS
        per_minute = result.minutes.setdefault(minute, {})
        per_minute[outcome] = per_minute.get(outcome, 0) + 1

    def _free_idle(self, campaigns: CampaignSet) -> None:
        """Once per minute of input: forget past days' caps and cooldowns that ran out, then
        customers with nothing left (no pending offer, no recent event, no cap, no cooldown)."""
        minute = self._low_ms // MINUTE_MS
        if minute == self._freed_minute:
            return
        self._freed_minute = minute
        horizon = self._low_ms - self.config.history_ms
        yesterday = self.local_day(max(0, self._low_ms)).toordinal() - 1
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

    # --- outputs --------------------------------------------------------------------------------

    def _record(
        self,
        result: OffersResult,
        found: Campaign,
        customer_id: str,
        arrival: Arrival,
        now_ms: int,
        outcome: str,
        reason: str | None,
        detail: str | None = None,
        send_at_ms: int | None = None,
        offer: str | None = None,
    ) -> None:
        event = arrival.event
        the_offer = offer or offer_id(customer_id, found.id, event.event_id)
        latency = now_ms - arrival.ingest_ms if arrival.ingest_ms > 0 else None
        result.decisions.append(
            Decision(
                decision_id=f"{the_offer}:match",
                offer_id=the_offer,
                stage="match",
                outcome=outcome,  # type: ignore[arg-type]
                reason=reason,
                detail=detail,
                campaign_id=found.id,
                campaign_version=found.version,
                customer_id=customer_id,
                trigger_event_id=event.event_id,
                trigger_time=iso_ms(arrival.event_ms),
                decided_at=iso_ms(now_ms),
                send_at=None if send_at_ms is None else iso_ms(send_at_ms),
                latency_ms=latency,
                schema=DECISION_SCHEMA,
            )
        )
        self._count(result, found.id, arrival.event_ms, outcome, reason, "match", latency)
        if outcome == "suppressed":
            minute = arrival.event_ms // MINUTE_MS * MINUTE_MS
            per_minute = result.minutes.setdefault(minute, {})
            per_minute[outcome] = per_minute.get(outcome, 0) + 1

    def _count(
        self,
        result: OffersResult,
        campaign_id: str,
        trigger_ms: int,
        outcome: str,
        reason: str | None,
        stage: str,
        latency_ms: int | None = None,
    ) -> None:
        """Figures by UTC day of the trigger (docs/redis-keys.md, "Offers")."""
        day = trigger_ms // DAY_MS
        label = _utc_date(day)
        prefix = self.config.prefix
        figures = result.figures
        per_campaign = (HASH, offers_key(prefix, label, campaign(campaign_id)), day)
        count(figures, per_campaign, outcome)
        if stage == "match" and outcome != "rule_error":
            count(figures, per_campaign, "matched")
            count(figures, (HASH, offers_key(prefix, label, OFFERS_MATCHED), day), campaign_id)
        if reason is not None and outcome != "pending":
            count(figures, per_campaign, f"{outcome}.{reason}")
            reasons = offers_key(prefix, label, OFFERS_REASONS)
            count(figures, (HASH, reasons, day), f"{outcome}.{reason}")
        if outcome in ("sent", "held_out", "suppressed", "rule_error"):
            count(figures, (HASH, offers_key(prefix, label, outcome), day), campaign_id)
        if latency_ms is not None:
            key = (HASH, offers_key(prefix, label, OFFERS_LATENCY), day)
            count(figures, key, "decisions")
            count(figures, key, "sum_ms", max(0, latency_ms))
            # Zero-padded, so that the buckets sort in order as text (Grafana sorts rows so).
            bucket = next((f"le_{b:04d}ms" for b in LATENCY_BUCKETS_MS if latency_ms <= b), "over")
            count(figures, key, bucket)

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes; only the customers changed since the last one are encoded
        again (most customers in state are waiting out their history window or a cooldown)."""
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


def _tidy(text: str) -> str:
    """A text whose opening placeholder was empty (``", short of cash?"``) starts cleanly."""
    trimmed = text.lstrip(" ,;:-")
    return trimmed[:1].upper() + trimmed[1:] if trimmed != text else text


def _utc_date(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()
