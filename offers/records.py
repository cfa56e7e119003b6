"""The offers' output contract (docs/offers-contract.md) and the state of a delayed offer.

- :class:`OfferMessage` - one per offer to send, on the offers topic;
- :class:`Decision` - one per match and one per release, on the offer-decisions topic.

``offer_id`` is derived from (customer, campaign, trigger event), so a replay after a crash
produces the same id and a subscriber that dedupes by it sends one SMS.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

OFFER_SCHEMA = "bank-clickstream/offer/v1"
DECISION_SCHEMA = "bank-clickstream/offer-decision/v1"

Outcome = Literal["pending", "sent", "held_out", "suppressed", "rule_error"]
Stage = Literal["match", "release"]
# Why an offer is not sent (``suppressed``), held back (``pending``) or held out.
NO_CONSENT = "no_consent"
FREQUENCY_CAP = "frequency_cap"
DAILY_CAP = "daily_cap"
COOLDOWN = "cooldown"
LOWER_PRIORITY = "lower_priority"
EXPIRED = "expired"
CANCELLED = "cancelled"
SEND_DELAY = "send_delay"
QUIET_HOURS = "quiet_hours"
CONTROL_GROUP = "control_group"
GLOBAL_HOLDOUT = "global_holdout"
RULE_RAISED = "rule_raised"
RULE_TIMEOUT = "rule_timeout"


def offer_id(customer_id: str, campaign_id: str, trigger_event_id: str) -> str:
    """The offer's id: the same customer, campaign and trigger event always give the same id."""
    text = f"{customer_id}\x1f{campaign_id}\x1f{trigger_event_id}".encode()
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC text of epoch milliseconds, e.g. ``2026-11-25T08:00:01.250Z``."""
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Pending(msgspec.Struct, gc=False, array_like=True):
    """An offer decided to go (or to be held out) and waiting for its send time."""

    offer_id: str
    campaign_id: str
    campaign_version: int
    customer_id: str
    channel: str
    template: str
    params: dict[str, Any]
    text: str
    trigger_event_id: str
    trigger_ms: int
    decided_at_ms: int
    send_at_ms: int
    held_out: str | None
    """None to send; ``control_group`` or ``global_holdout`` to log as would-have-sent."""
    day: int
    """The bank's calendar day (ordinal) whose caps it counts against."""
    wall_due_ms: int
    """Wall-clock time it is due if the input goes quiet (decided_at + the wait)."""
    cancelled: str | None = None
    """Set when the customer did one of the campaign's cancel_if events before send_at."""


class OfferMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One offer to send (the offers topic)."""

    offer_id: str
    campaign_id: str
    campaign_version: int
    customer_id: str
    channel: str
    phone: str | None
    template: str
    params: dict[str, Any]
    text: str
    trigger_event_id: str
    trigger_time: str
    decided_at: str
    send_at: str
    schema: str = OFFER_SCHEMA


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One decision about one match (the offer-decisions topic)."""

    decision_id: str
    """``<offer_id>:<stage>``: a replay rewrites the same decision id."""
    offer_id: str
    stage: Stage
    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    campaign_id: str
    campaign_version: int
    customer_id: str
    trigger_event_id: str
    trigger_time: str
    decided_at: str
    send_at: str | None = None
    latency_ms: int | None = None
    """Match stage: from the trigger entering Kafka to the decision."""
    schema: str
    """Always :data:`DECISION_SCHEMA` (required, so that it is never omitted)."""
