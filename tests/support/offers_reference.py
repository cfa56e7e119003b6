"""The offers a set of events should produce, computed literally from PRODUCT.md and
docs/campaigns.md over plain JSON dicts and a CSV extract: not from the job's code.

It covers the rules the integration test's campaigns use: a trigger predicate per campaign,
consent (fail closed), cooldown, the campaign's daily cap and the global one in the bank's time
zone, the send delay (moved out of the quiet hours) with its cancel events, the global holdout
and the control groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Event = dict[str, Any]
Customer = dict[str, str]


@dataclass(frozen=True)
class CampaignSpec:
    """What the reference needs of one campaign."""

    id: str
    triggers: Callable[[Event, Customer], bool]
    cancels: Callable[[Event], bool]
    delay: timedelta
    cooldown: timedelta
    daily_cap: int
    control_share: float
    priority: int = 0


@dataclass(frozen=True)
class Released:
    """An offer that went out (``sent``) or would have (``held_out``), and when."""

    customer: str
    campaign: str
    trigger_event_id: str
    send_at: datetime
    outcome: str


@dataclass
class Outcome:
    """The final word on every match, by offer id."""

    sent: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """offer id → (customer, campaign, trigger event id)."""
    held_out: set[str] = field(default_factory=set)
    released: dict[str, Released] = field(default_factory=dict)
    """offer id → the sent and held-out offers with their send time."""
    cancelled: set[str] = field(default_factory=set)
    no_consent: set[str] = field(default_factory=set)
    capped: set[str] = field(default_factory=set)


def stable_share(*parts: str) -> float:
    """docs/campaigns.md: blake2b (8 bytes) of the parts joined by U+001F, over 2**64."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def the_offer_id(customer: str, campaign: str, event_id: str) -> str:
    """docs/offers-contract.md: blake2b (12 bytes, hex) of customer, campaign, trigger event."""
    text = f"{customer}\x1f{campaign}\x1f{event_id}".encode()
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def _time(event: Event) -> datetime:
    return datetime.fromisoformat(event["event_time"])


def out_of_quiet_hours(at: datetime, zone: ZoneInfo, quiet: tuple[time, time]) -> datetime:
    """docs/campaigns.md: a send time inside the quiet hours (start-end, across midnight when
    start > end, in the bank's time zone) moves to their end."""
    local = at.astimezone(zone)
    start, end = quiet
    now = local.time()
    inside = start <= now < end if start < end else now >= start or now < end
    if not inside:
        return at
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(at.tzinfo)


def expected_offers(
    events: list[Event],
    customers: dict[str, Customer],
    campaigns: list[CampaignSpec],
    *,
    holdout_share: float,
    global_daily_cap: int,
    timezone: str,
    quiet_hours: tuple[time, time] = (time(21), time(8)),
) -> Outcome:
    """Decide every customer's triggers in event-time order (ties by event id)."""
    zone = ZoneInfo(timezone)
    outcome = Outcome()
    by_customer: dict[str, list[Event]] = {}
    for event in events:
        if event.get("customer_id"):
            by_customer.setdefault(event["customer_id"], []).append(event)
    ordered = sorted(campaigns, key=lambda c: (-c.priority, c.id))
    for customer_id, own in by_customer.items():
        own.sort(key=lambda e: (_time(e), e["event_id"]))
        profile = customers.get(customer_id, {})
        consent = profile.get("sms_consent", "").lower() == "true"
        last: dict[str, datetime] = {}
        per_day: dict[tuple[Any, str], int] = {}
        for event in own:
            at = _time(event)
            day = at.astimezone(zone).date()
            for spec in ordered:
                if not spec.triggers(event, profile):
                    continue
                oid = the_offer_id(customer_id, spec.id, event["event_id"])
                if not consent:
                    outcome.no_consent.add(oid)
                    continue
                if spec.id in last and at - last[spec.id] < spec.cooldown:
                    outcome.capped.add(oid)
                    continue
                if per_day.get((day, spec.id), 0) >= spec.daily_cap:
                    outcome.capped.add(oid)
                    continue
                if per_day.get((day, "*"), 0) >= global_daily_cap:
                    outcome.capped.add(oid)
                    continue
                last[spec.id] = at
                send_at = out_of_quiet_hours(at + spec.delay, zone, quiet_hours)
                if any(at < _time(e) <= send_at and spec.cancels(e) for e in own):
                    # A cancelled offer gives its place in the caps back (not its cooldown).
                    outcome.cancelled.add(oid)
                    continue
                per_day[(day, spec.id)] = per_day.get((day, spec.id), 0) + 1
                per_day[(day, "*")] = per_day.get((day, "*"), 0) + 1
                held = stable_share("holdout", customer_id) < holdout_share or (
                    stable_share(customer_id, spec.id) < spec.control_share
                )
                if held:
                    outcome.held_out.add(oid)
                else:
                    outcome.sent[oid] = (customer_id, spec.id, event["event_id"])
                outcome.released[oid] = Released(
                    customer_id, spec.id, event["event_id"], send_at,
                    "held_out" if held else "sent",
                )  # fmt: skip
    return outcome
