"""The offers steps of the dataflow: the decision engine per customer shard, and its outputs.

    shard_state ─ customers' on-time events, by customer shard ─→ offers (recoverable)
        offers ├─ OfferMessage  → <offers topic>            (key: customer id)
               ├─ Decision      → <offer decisions topic>   (key: customer id)
               ├─ day figures   → figures (Totals)          → Redis
               └─ per minute    → offers_by_minute          → Redis

The campaigns are read by one :class:`~offers.loader.CampaignRegistry` per process, shared by
its shards, and re-read when a file changes. Profiles come from the customer store in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import bytewax.operators as op
import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from flows.settings import Settings
from offers.engine import OfferMinutes, OffersConfig, OffersResult, OffersShard, ProfileLookup
from offers.loader import CampaignRegistry
from operators.shard_state import ShardBatchResult
from operators.totals import FigureDeltas
from state.customer_store import CustomerProfile
from state.records import Arrival

Clock = Callable[[], float]
OFFER_FIGURES = "offer_figures"
OFFERS_PER_MINUTE = "offers_per_minute"
_encode = msgspec.json.Encoder().encode


class OffersBatch(msgspec.Struct, frozen=True, gc=False):
    """One shard-state batch's customer events for one offers shard, and the input's progress."""

    low_ms: int
    """How far every input partition has got (event time)."""
    arrivals: list[Arrival]


def offers_config(settings: Settings) -> OffersConfig:
    """The engine's configuration from the job's settings."""
    return OffersConfig(
        prefix=settings.redis_prefix,
        timezone=settings.bank_timezone,
        quiet_hours=settings.quiet_hours(),
        max_offers_per_event=settings.offers_max_per_event,
        daily_cap=settings.offers_daily_cap,
        holdout_share=settings.offers_holdout_share,
        history_events=settings.offers_history_events,
        history_ms=settings.offers_history_s * 1000,
        session_gap_ms=settings.session_gap_s * 1000,
        max_trigger_age_ms=settings.offers_max_trigger_age_s * 1000,
        rule_timeout_ms=settings.offers_rule_timeout_ms,
        release_grace_ms=round(settings.offers_release_grace_s * 1000),
    )


def lazy_profile_lookup(settings: Settings) -> ProfileLookup:
    """Profiles from the customer store, connecting on first use (in the worker)."""
    reader: list[Any] = []

    def lookup(customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
        if not reader:
            import redis

            from state.customer_store import CustomerProfiles

            client = redis.Redis.from_url(settings.redis_url)
            reader.append(
                CustomerProfiles(client, settings.redis_prefix, settings.customer_cache_size)
            )
        found: dict[str, CustomerProfile] = reader[0].get_many(customer_ids)
        return found

    return lookup


class OffersLogic(StatefulBatchLogic[OffersBatch, OffersResult, bytes]):
    """Bytewax shim around :class:`~offers.engine.OffersShard`."""

    def __init__(
        self,
        shard: OffersShard,
        campaigns: Callable[[], CampaignRegistry],
        profiles: ProfileLookup,
        clock: Clock,
    ) -> None:
        """Wrap a shard with the process's campaigns, the profile lookup and the wall clock."""
        self.shard = shard
        self._campaigns = campaigns
        self._profiles = profiles
        self._clock = clock

    def on_batch(self, values: list[OffersBatch]) -> tuple[Iterable[OffersResult], bool]:
        """Decide on the customers' events; release what is due."""
        if len(values) == 1:
            arrivals = values[0].arrivals
        else:
            arrivals = [a for batch in values for a in batch.arrivals]
        low_ms = max(batch.low_ms for batch in values)
        now_ms = int(self._clock() * 1000)
        result = self.shard.process(
            arrivals, self._campaigns().current(), self._profiles, low_ms, now_ms
        )
        return _if_any(result), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[OffersResult], bool]:
        """The input is quiet: release by the wall clock."""
        now_ms = int(self._clock() * 1000)
        result = self.shard.release(self._campaigns().current(), self._profiles, now_ms)
        return _if_any(result), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[OffersResult], bool]:
        """A bounded input ended (a back-fill): decide every pending offer now."""
        now_ms = int(self._clock() * 1000)
        campaigns = self._campaigns().current()
        result = self.shard.release(campaigns, self._profiles, now_ms, everything=True)
        return _if_any(result), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """When the earliest pending offer is due if nothing else happens."""
        due = self.shard.next_wall_due_ms()
        return None if due is None else datetime.fromtimestamp(due / 1000, UTC)

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.shard.snapshot()


def _if_any(result: OffersResult) -> list[OffersResult]:
    return [result] if result.decisions or result.offers else []


def _route(
    lateness_ms: int,
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, OffersBatch]]]:
    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, OffersBatch]]:
        result = item[1]
        low_ms = result.watermark_ms + lateness_ms
        for name, arrivals in result.offers.items():
            yield name, OffersBatch(low_ms, arrivals)

    return route


Message = KafkaSinkMessage[bytes, bytes]


def _messages(settings: Settings) -> Callable[[tuple[str, OffersResult]], list[Message]]:
    offers_topic = settings.offers_topic
    decisions_topic = settings.offer_decisions_topic

    def messages(item: tuple[str, OffersResult]) -> list[Message]:
        result = item[1]
        out = [
            KafkaSinkMessage(o.customer_id.encode(), _encode(o), topic=offers_topic)
            for o in result.offers
        ]
        out.extend(
            KafkaSinkMessage(d.customer_id.encode(), _encode(d), topic=decisions_topic)
            for d in result.decisions
        )
        return out

    return messages


def _figures(item: tuple[str, OffersResult]) -> Iterable[tuple[str, FigureDeltas | OfferMinutes]]:
    result = item[1]
    if result.figures:
        yield OFFER_FIGURES, result.figures
    if result.minutes:
        yield OFFERS_PER_MINUTE, result.minutes


class _Campaigns:
    """One registry per process, built on first use (in the worker, not at flow build time)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._registry: CampaignRegistry | None = None

    def __call__(self) -> CampaignRegistry:
        if self._registry is None:
            assert self._settings.campaigns_dir is not None
            self._registry = CampaignRegistry(
                self._settings.campaigns_dir, self._settings.campaigns_reload_s
            )
        return self._registry


def add_offers(
    shard_out: Stream[tuple[str, ShardBatchResult]],
    settings: Settings,
    *,
    profiles: ProfileLookup | None = None,
    clock: Clock = time.time,
) -> tuple[Stream[KafkaSinkMessage[bytes, bytes]], Stream[tuple[str, Any]]]:
    """Add the offers steps after the shard state.

    Returns:
        The Kafka messages (offers and decisions), and the figure deltas keyed
        ``offer_figures`` (for the totals) or ``offers_per_minute`` (for a minute series).
    """
    config = offers_config(settings)
    campaigns = _Campaigns(settings)
    lookup = profiles or lazy_profile_lookup(settings)
    batches = op.flat_map("offer_events", shard_out, _route(settings.allowed_lateness_s * 1000))
    decided = op.stateful_batch(
        "offers",
        batches,
        lambda resume: OffersLogic(OffersShard(config, resume), campaigns, lookup, clock),
    )
    messages = op.flat_map("offer_messages", decided, _messages(settings))
    figures = op.flat_map("offer_figures", decided, _figures)
    return messages, figures
