"""The decision chain: which matches become offers, and whether a pending offer goes out.

Every match is decided in this order:

1. ``expired`` - the trigger is older than the maximum trigger age (a back-fill of old events
   never texts anyone);
2. ``no_consent`` - the customer has not consented to the campaign's channel (unknown → no);
3. ``cooldown`` - the campaign went to this customer less than its cooldown before;
4. ``frequency_cap`` / ``daily_cap`` - the campaign's cap per customer per calendar day, then the
   cap over all campaigns (days in the bank's time zone);
5. ``lower_priority`` - the event already has the most offers allowed per event (campaigns are
   tried highest priority first, so only matches that could have been sent lose a slot).

A match that passes is ``pending``: held until its send time (the trigger's time plus the
campaign's delay, moved out of quiet hours) and re-checked then: a cancel event in the meantime
(by default a conversion), a withdrawn consent or an ended campaign suppresses it. A customer in
the global holdout or in the campaign's control group (stable hashes) goes through every step
alike, and is logged as ``held_out`` instead of being sent.
"""

from __future__ import annotations

import hashlib

import msgspec

from offers.api import Campaign
from offers.calendar import BankCalendar
from offers.config import OffersConfig
from offers.customers import ALL_CAMPAIGNS, CustomerOffers
from offers.figures import OfferMinutes, count_decision, count_minute
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
    SEND_DELAY,
    Decision,
    OfferMessage,
    Outcome,
    Pending,
    iso_ms,
    offer_id,
)
from offers.rules import Match, RuleError, RuleRunner
from state.customer_store import CustomerProfile, parse_consent
from state.records import Arrival
from state.totals import FigureDeltas


class OffersResult(msgspec.Struct, gc=False):
    """What one call decided."""

    offers: list[OfferMessage]
    decisions: list[Decision]
    figures: FigureDeltas
    minutes: OfferMinutes


class MatchDecision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What was decided about one match (the ``match`` stage), before it is logged."""

    campaign: Campaign
    customer_id: str
    arrival: Arrival
    """The trigger."""
    decided_at_ms: int
    outcome: Outcome
    reason: str | None
    detail: str | None = None
    send_at_ms: int | None = None
    """Pending offers only."""
    offer_id: str | None = None
    """The offer's id when already known (pending offers); else derived from the match."""


def consent_for(profile: CustomerProfile, channel: str) -> bool:
    """True only when the extract says yes for this channel (missing or unclear → False)."""
    if channel == "sms":
        return profile.sms_consent is True
    value, _ok = parse_consent(profile.extra.get(f"{channel}_consent"))
    return value is True


def stable_share(*parts: str) -> float:
    """A stable number in [0, 1) for these parts (docs/campaigns.md, control groups)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class DecisionChain:
    """Decides the matches of one event and the release of pending offers, for one shard."""

    def __init__(self, config: OffersConfig, calendar: BankCalendar, runner: RuleRunner) -> None:
        """Chain with the shard's configuration, the bank's calendar and the rule runner."""
        self.config = config
        self.calendar = calendar
        self.runner = runner

    def decide(
        self,
        arrival: Arrival,
        state: CustomerOffers,
        profile: CustomerProfile,
        candidates: list[Campaign],
        now_ms: int,
        result: OffersResult,
    ) -> list[Pending]:
        """Run the candidate campaigns' rules on one event and decide each match.

        Args:
            arrival: the trigger.
            state: the customer's offer state; the offers that pass are counted and added to
                its pending offers.
            profile: the customer's profile.
            candidates: the campaigns the event may trigger, highest priority first.
            now_ms: the wall clock.
            result: where the decisions and figures go.

        Returns:
            The new pending offers, to schedule for release.
        """
        event, event_ms = arrival.event, arrival.event_ms
        customer_id = profile.customer_id
        day = self.calendar.local_day(event_ms)
        history = state.history_before(event_ms, event.event_id, self.config.session_gap_ms)

        def refused(campaign: Campaign, outcome: Outcome, reason: str, detail: str | None) -> None:
            decision = MatchDecision(
                campaign=campaign,
                customer_id=customer_id,
                arrival=arrival,
                decided_at_ms=now_ms,
                outcome=outcome,
                reason=reason,
                detail=detail,
            )
            self._log_match(result, decision)

        matches: list[Match] = []
        for campaign in candidates:
            if not campaign.valid_on(day):
                continue
            answer = self.runner.ask(campaign, event, profile, history)
            if isinstance(answer, Match):
                matches.append(answer)
            elif isinstance(answer, RuleError):
                refused(campaign, "rule_error", answer.reason, answer.detail)
        if not matches:
            return []
        ordinal = day.toordinal()
        counts = state.counts.setdefault(ordinal, {})
        for old in [d for d in state.counts if d < ordinal - 1]:
            del state.counts[old]
        slots = self.config.max_offers_per_event
        held: list[Pending] = []
        for match in matches:
            campaign = match.campaign
            reason = self._match_suppressed(
                state, profile, campaign, counts, slots, event_ms, now_ms
            )
            if reason is not None:
                refused(campaign, "suppressed", reason, None)
                continue
            slots -= 1
            counts[campaign.id] = counts.get(campaign.id, 0) + 1
            counts[ALL_CAMPAIGNS] = counts.get(ALL_CAMPAIGNS, 0) + 1
            state.last_offer[campaign.id] = event_ms
            held.append(self._hold(arrival, state, customer_id, match, ordinal, now_ms, result))
        return held

    def _match_suppressed(
        self,
        state: CustomerOffers,
        profile: CustomerProfile,
        campaign: Campaign,
        counts: dict[str, int],
        slots: int,
        event_ms: int,
        now_ms: int,
    ) -> str | None:
        """Why a match is not held for sending (steps 1 to 5 above), or None."""
        max_age = self.config.max_trigger_age_ms
        last = state.last_offer.get(campaign.id)
        if max_age and now_ms - event_ms > max_age:
            return EXPIRED
        if not consent_for(profile, campaign.channel):
            return NO_CONSENT
        if last is not None and 0 <= event_ms - last < campaign.cooldown_ms:
            return COOLDOWN
        if counts.get(campaign.id, 0) >= campaign.daily_cap:
            return FREQUENCY_CAP
        if counts.get(ALL_CAMPAIGNS, 0) >= self.config.daily_cap:
            return DAILY_CAP
        if slots <= 0:
            return LOWER_PRIORITY
        return None

    def _held_out(self, customer_id: str, campaign: Campaign) -> str | None:
        """Why the customer gets no offer of this campaign although it passes: the global
        holdout, then the campaign's control group.
        """
        holdout = self.config.holdout_share
        if holdout and stable_share("holdout", customer_id) < holdout:
            return GLOBAL_HOLDOUT
        if campaign.control_share and stable_share(customer_id, campaign.id) < (
            campaign.control_share
        ):
            return CONTROL_GROUP
        return None

    def _hold(
        self,
        arrival: Arrival,
        state: CustomerOffers,
        customer_id: str,
        match: Match,
        ordinal: int,
        now_ms: int,
        result: OffersResult,
    ) -> Pending:
        """Add the match to the customer's pending offers until its send time."""
        campaign = match.campaign
        event = arrival.event
        send_at, quiet = self.calendar.send_time(arrival.event_ms + campaign.send_delay_ms)
        pending = Pending(
            offer_id=offer_id(customer_id, campaign.id, event.event_id),
            campaign_id=campaign.id,
            campaign_version=campaign.version,
            customer_id=customer_id,
            channel=campaign.channel,
            template=campaign.template,
            params=match.params,
            text=match.text,
            trigger_event_id=event.event_id,
            trigger_ms=arrival.event_ms,
            decided_at_ms=now_ms,
            send_at_ms=send_at,
            held_out=self._held_out(customer_id, campaign),
            day=ordinal,
            wall_due_ms=now_ms + max(0, send_at - arrival.event_ms),
        )
        if state.cancel_seen(campaign, pending):
            pending.cancelled = CANCELLED
        state.pending.append(pending)
        self._log_match(
            result,
            MatchDecision(
                campaign=campaign,
                customer_id=customer_id,
                arrival=arrival,
                decided_at_ms=now_ms,
                outcome="pending",
                reason=QUIET_HOURS if quiet else SEND_DELAY,
                send_at_ms=send_at,
                offer_id=pending.offer_id,
            ),
        )
        return pending

    def release(
        self,
        state: CustomerOffers,
        pending: Pending,
        campaign: Campaign | None,
        profile: CustomerProfile | None,
        now_ms: int,
        result: OffersResult,
    ) -> None:
        """Send, hold out or suppress one pending offer that is due.

        Args:
            state: the customer's offer state (a suppressed offer no longer counts to its caps).
            pending: the offer; the caller removes it from the customer's pending offers.
            campaign: its campaign if still running, else None.
            profile: the customer's profile now, None if the extract has none.
            now_ms: the wall clock.
            result: where the offer, the decision and the figures go.
        """
        reason = pending.cancelled
        if reason is None and (profile is None or not consent_for(profile, pending.channel)):
            reason = NO_CONSENT
        sent_on = self.calendar.local_day(pending.send_at_ms)
        if reason is None and (campaign is None or not campaign.valid_on(sent_on)):
            reason = EXPIRED
        outcome: Outcome
        if reason is not None:
            counts = state.counts.get(pending.day)
            if counts is not None:
                counts[pending.campaign_id] = counts.get(pending.campaign_id, 0) - 1
                counts[ALL_CAMPAIGNS] = counts.get(ALL_CAMPAIGNS, 0) - 1
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
            outcome=outcome,
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
        count_decision(result.figures, self.config.prefix, decision, pending.trigger_ms)
        count_minute(result.minutes, pending.send_at_ms, outcome)

    def _log_match(self, result: OffersResult, match: MatchDecision) -> None:
        """The match's decision (``<offer id>:match``) and its figures."""
        arrival = match.arrival
        event = arrival.event
        campaign = match.campaign
        the_offer = match.offer_id or offer_id(match.customer_id, campaign.id, event.event_id)
        latency = match.decided_at_ms - arrival.ingest_ms if arrival.ingest_ms > 0 else None
        decision = Decision(
            decision_id=f"{the_offer}:match",
            offer_id=the_offer,
            stage="match",
            outcome=match.outcome,
            reason=match.reason,
            detail=match.detail,
            campaign_id=campaign.id,
            campaign_version=campaign.version,
            customer_id=match.customer_id,
            trigger_event_id=event.event_id,
            trigger_time=iso_ms(arrival.event_ms),
            decided_at=iso_ms(match.decided_at_ms),
            send_at=None if match.send_at_ms is None else iso_ms(match.send_at_ms),
            latency_ms=latency,
            schema=DECISION_SCHEMA,
        )
        result.decisions.append(decision)
        count_decision(result.figures, self.config.prefix, decision, arrival.event_ms)
        if match.outcome == "suppressed":
            count_minute(result.minutes, arrival.event_ms, match.outcome)
