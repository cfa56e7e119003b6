"""The offers' figures: what each decision adds, and under which Redis key.

The key names are :mod:`state.redis_keys`' (docs/redis-keys.md, "Offers"): per UTC day of the
trigger, one hash per campaign (its outcomes and reasons) and one per outcome family (matched,
sent, held_out, suppressed, rule_error, reasons, latency). The offers per minute feed the
dashboards' offer rate.
"""

from __future__ import annotations

from offers.calendar import DAY_MS, MINUTE_MS
from offers.records import Decision, Outcome
from state.redis_keys import (
    OFFERS_HELD_OUT,
    OFFERS_LATENCY,
    OFFERS_MATCHED,
    OFFERS_REASONS,
    OFFERS_RULE_ERROR,
    OFFERS_SENT,
    OFFERS_SUPPRESSED,
    campaign,
    day_label,
    offers_key,
)
from state.totals import HASH, FigureDeltas, count

LATENCY_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 120, 250, 1000)
OUTCOME_FAMILIES = frozenset({OFFERS_SENT, OFFERS_HELD_OUT, OFFERS_SUPPRESSED, OFFERS_RULE_ERROR})
"""Outcomes with a day family of their own (campaign id → count); ``pending`` has none."""

OfferMinutes = dict[int, dict[str, int]]
"""Offers by minute (epoch ms of the minute) and outcome: sent, held_out, suppressed."""


def count_decision(figures: FigureDeltas, prefix: str, decision: Decision, trigger_ms: int) -> None:
    """Add one decision to the figures of its trigger's UTC day.

    Args:
        figures: the deltas to add to.
        prefix: the job's Redis key prefix.
        decision: a decision of the match or the release stage.
        trigger_ms: the trigger's event time.
    """
    day = trigger_ms // DAY_MS
    label = day_label(day)
    campaign_id, outcome, reason = decision.campaign_id, decision.outcome, decision.reason
    per_campaign = (HASH, offers_key(prefix, label, campaign(campaign_id)), day)
    count(figures, per_campaign, outcome)
    if decision.stage == "match" and outcome != "rule_error":
        count(figures, per_campaign, "matched")
        count(figures, (HASH, offers_key(prefix, label, OFFERS_MATCHED), day), campaign_id)
    if reason is not None and outcome != "pending":
        count(figures, per_campaign, f"{outcome}.{reason}")
        reasons = offers_key(prefix, label, OFFERS_REASONS)
        count(figures, (HASH, reasons, day), f"{outcome}.{reason}")
    if outcome in OUTCOME_FAMILIES:
        count(figures, (HASH, offers_key(prefix, label, outcome), day), campaign_id)
    latency_ms = decision.latency_ms
    if latency_ms is not None:
        key = (HASH, offers_key(prefix, label, OFFERS_LATENCY), day)
        count(figures, key, "decisions")
        count(figures, key, "sum_ms", max(0, latency_ms))
        # Zero-padded, so that the buckets sort in order as text (Grafana sorts rows so).
        bucket = next((f"le_{b:04d}ms" for b in LATENCY_BUCKETS_MS if latency_ms <= b), "over")
        count(figures, key, bucket)


def count_minute(minutes: OfferMinutes, at_ms: int, outcome: Outcome) -> None:
    """Count one offer sent, held out or suppressed in the minute of ``at_ms``."""
    per_minute = minutes.setdefault(at_ms // MINUTE_MS * MINUTE_MS, {})
    per_minute[outcome] = per_minute.get(outcome, 0) + 1
