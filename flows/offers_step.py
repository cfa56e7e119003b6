"""The offers steps of the dataflow: the decision engine per customer shard, and its outputs.

    shard_state ─ customers' on-time events, by customer shard ─→ offers (recoverable)
        offers ├─ OfferMessage  → <offers topic>            (key: customer id)
               ├─ Decision      → <offer decisions topic>   (key: customer id)
               ├─ day figures   → figures (Totals)          → Redis
               ├─ per minute    → offers_by_minute          → Redis
               └─ decisions as rows → offers_archive (by trigger hour) → archive ``offers`` table

The campaigns are read by one :class:`~offers.loader.CampaignRegistry` per process, shared by
its shards, and re-read when a file changes. Profiles come from the customer store in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import bytewax.operators as op
import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from flows.archive_steps import hour_archive_logic, refuse_archive_in_shard, table_rows
from flows.exchange import Exchange, Placement
from flows.profiles import lazy_profile_lookup
from flows.stateful import UpstreamProgress, stateful_batch
from offers.archive import OfferArchive, OfferRow, offer_rows
from offers.engine import OffersConfig, OffersResult, OffersShard, ProfileLookup
from offers.loader import CampaignRegistry
from operators.aggregates import MinuteDeltas
from operators.shard_state import PIPELINE, ShardBatchResult
from sinks.kafka_topics import ID_HEADER
from state.archive_layout import OFFERS_TABLE
from state.hour_groups import TableRows
from state.moments import NEVER
from state.records import ArchiveObject, Arrival
from state.settings import Settings
from state.snapshots import SnapshotVersionError, decode_snapshot, encode_snapshot
from state.stop import stop_requested
from state.totals import FIGURES, FigureDeltas

Clock = Callable[[], float]
OFFERS_PER_MINUTE = "offers_per_minute"
# A trigger hour's decisions may leave the state this long after the hour, once every offer
# matched in it is released; after OFFER_MAX_HOLD_MS even if some are not.
OFFER_RETIRE_MS = 3 * 3600_000
OFFER_MAX_HOLD_MS = 48 * 3600_000
# Version 1 was the engine's state alone, before decisions were archived; version 2 held the
# shard's decisions for the archive too (see refuse_archive_in_shard).
OFFERS_SNAPSHOT_VERSION = 3
_encode = msgspec.json.Encoder().encode


class OffersBatch(msgspec.Struct, frozen=True, gc=False):
    """One shard-state batch's customer events for one offers shard, and the input's progress."""

    low_ms: int
    """How far every input partition has got (event time)."""
    arrivals: list[Arrival]


OFFERS_BATCHES: Exchange[OffersBatch] = Exchange(OffersBatch)


class OffersOutput(msgspec.Struct, gc=False):
    """What one activation of an offers shard produced."""

    result: OffersResult
    low_ms: int = NEVER
    """How far every input partition had got (event time) when the shard acted."""


class OffersLogicSnapshot(msgspec.Struct, frozen=True):
    """The engine's state (versioned bytes)."""

    version: int
    offers: bytes


def _migrate(version: int, snapshot: bytes) -> OffersLogicSnapshot:
    """Version 1 was the engine's snapshot itself: its decisions were not archived."""
    if version == 2:
        raise refuse_archive_in_shard("offers", version)
    if version != 1:
        msg = (
            f"OffersLogicSnapshot version {version!r} cannot be restored "
            f"(this code reads 1 and {OFFERS_SNAPSHOT_VERSION})"
        )
        raise SnapshotVersionError(msg)
    return OffersLogicSnapshot(OFFERS_SNAPSHOT_VERSION, snapshot)


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


class OffersLogic(StatefulBatchLogic[OffersBatch | bytes, OffersOutput, bytes]):
    """Bytewax shim around :class:`~offers.engine.OffersShard` and its decisions' archive."""

    def __init__(
        self,
        shard: OffersShard,
        campaigns: Callable[[], CampaignRegistry],
        profiles: ProfileLookup,
        clock: Clock,
        *,
        upstream: UpstreamProgress | None = None,
    ) -> None:
        """Wrap a shard with the process's campaigns, the profile lookup and the wall clock.

        ``upstream`` says when the input's progress may be acted on (releases by event time).
        """
        self.shard = shard
        self._campaigns = campaigns
        self._profiles = profiles
        self._clock = clock
        self._low_ms = NEVER
        self._upstream = upstream or UpstreamProgress(wait_for_epoch=False)

    def on_batch(self, packed: list[OffersBatch | bytes]) -> tuple[Iterable[OffersOutput], bool]:
        """Decide on the customers' events; release what is due."""
        values = OFFERS_BATCHES.unpack(packed)
        if len(values) == 1:
            arrivals = values[0].arrivals
        else:
            arrivals = [a for batch in values for a in batch.arrivals]
        low_ms = self._upstream.heard(max(batch.low_ms for batch in values))
        self._low_ms = max(self._low_ms, low_ms)
        now_ms = int(self._clock() * 1000)
        result = self.shard.process(
            arrivals, self._campaigns().current(), self._profiles, low_ms, now_ms
        )
        return self._output(result), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[OffersOutput], bool]:
        """The input is quiet: release by the wall clock; write decisions that are due."""
        now_ms = int(self._clock() * 1000)
        result = self.shard.release(self._campaigns().current(), self._profiles, now_ms)
        return self._output(result), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[OffersOutput], bool]:
        """A bounded input ended (a back-fill): decide every pending offer now (not on a
        requested stop: pending offers wait in the saved state for their time).
        """
        if stop_requested():
            return [], StatefulBatchLogic.RETAIN
        self._low_ms = max(self._low_ms, self._upstream.at_end())
        now_ms = int(self._clock() * 1000)
        campaigns = self._campaigns().current()
        result = self.shard.release(campaigns, self._profiles, now_ms, everything=True)
        return self._output(result), StatefulBatchLogic.RETAIN

    def _output(self, result: OffersResult) -> list[OffersOutput]:
        if result.decisions or result.offers:
            return [OffersOutput(result, self._low_ms)]
        return []

    def notify_at(self) -> datetime | None:
        """When the earliest pending offer is due (wall clock)."""
        due = self.shard.next_wall_due_ms()
        return None if due is None else datetime.fromtimestamp(due / 1000, UTC)

    def epoch_closed(self) -> None:
        """The progress heard in the epoch is safe to act on."""
        self._upstream.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        self.epoch_closed()
        return encode_snapshot(OffersLogicSnapshot(OFFERS_SNAPSHOT_VERSION, self.shard.snapshot()))


def offers_logic(
    resume: bytes | None,
    config: OffersConfig,
    settings: Settings,
    campaigns: Callable[[], CampaignRegistry],
    profiles: ProfileLookup,
    clock: Clock,
    *,
    wait_for_epoch: bool = False,
) -> OffersLogic:
    """An offers shard from its snapshot (of this version or the previous one), or a new one."""
    state = (
        decode_snapshot(resume, OffersLogicSnapshot, OFFERS_SNAPSHOT_VERSION, migrate=_migrate)
        if resume is not None
        else None
    )
    return OffersLogic(
        OffersShard(config, state.offers if state is not None else None),
        campaigns,
        profiles,
        clock,
        upstream=UpstreamProgress(wait_for_epoch=wait_for_epoch),
    )


def _route(
    lateness_ms: int, exchange: Exchange[OffersBatch]
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, Any]]]:
    pack = exchange.pack

    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, Any]]:
        result = item[1]
        low_ms = result.watermark_ms + lateness_ms
        for name, arrivals in result.offers.items():
            yield name, pack(name, OffersBatch(low_ms, arrivals))

    return route


Message = KafkaSinkMessage[bytes, bytes]


def _messages(settings: Settings) -> Callable[[tuple[str, OffersOutput]], list[Message]]:
    offers_topic = settings.offers_topic
    decisions_topic = settings.offer_decisions_topic

    def messages(item: tuple[str, OffersOutput]) -> list[Message]:
        result = item[1].result
        out = [
            KafkaSinkMessage(
                o.customer_id.encode(),
                _encode(o),
                topic=offers_topic,
                headers=[(ID_HEADER, o.offer_id.encode())],
            )
            for o in result.offers
        ]
        out.extend(
            KafkaSinkMessage(d.customer_id.encode(), _encode(d), topic=decisions_topic)
            for d in result.decisions
        )
        return out

    return messages


def _offer_rows(parts: int) -> Callable[[tuple[str, OffersOutput]], Iterable[Any]]:
    def route(item: tuple[str, OffersOutput]) -> Iterable[tuple[str, TableRows]]:
        output = item[1]
        rows = offer_rows(output.result.decisions, output.result.offers)
        return table_rows(OFFERS_TABLE, parts, item[0], output.low_ms, rows, _offer_id)

    return route


def _offer_id(row: OfferRow) -> str:
    return row.offer_id


def _figures(item: tuple[str, OffersOutput]) -> Iterable[tuple[str, FigureDeltas]]:
    figures = item[1].result.figures
    return [(FIGURES, figures)] if figures else []


def _minutes(item: tuple[str, OffersOutput]) -> tuple[str, MinuteDeltas | bytes]:
    return OFFERS_PER_MINUTE, MinuteDeltas(item[1].low_ms, item[1].result.minutes)


def _pipeline(item: tuple[str, OffersOutput]) -> Iterable[tuple[str, dict[str, int]]]:
    rule_errors = sum(1 for d in item[1].result.decisions if d.outcome == "rule_error")
    return [(PIPELINE, {"offer_rule_errors": rule_errors})] if rule_errors else []


class OfferStreams(NamedTuple):
    """What the offers add to the dataflow, one stream each."""

    messages: Stream[KafkaSinkMessage[bytes, bytes]]
    """Offer events for the offers topic."""
    figures: Stream[tuple[str, FigureDeltas]]
    """Day figures, keyed for the figure totals."""
    minutes: Stream[tuple[str, MinuteDeltas | bytes]]
    """Per-minute deltas, keyed for the offers' series (never packed: it is one per batch)."""
    pipeline: Stream[tuple[str, dict[str, int]]]
    """Pipeline counters (rule errors)."""
    objects: Stream[tuple[str, list[ArchiveObject]]]
    """The decisions' archive objects."""


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
    snapshots: bool = True,
    wait_for_epoch: bool = False,
    placement: Placement | None = None,
) -> OfferStreams:
    """Add the offers steps after the shard state.

    Returns:
        The offers' streams: the Kafka messages (offers and decisions), the figure deltas (for
        the totals), the per-minute deltas, the pipeline counters and the objects of the
        archive's ``offers`` table.
    """
    config = offers_config(settings)
    campaigns = _Campaigns(settings)
    lookup = profiles or lazy_profile_lookup(settings)
    exchange: Exchange[OffersBatch] = Exchange(OffersBatch, placement)
    batches = op.flat_map(
        "offer_events", shard_out, _route(settings.allowed_lateness_s * 1000, exchange)
    )
    decided = stateful_batch(
        "offers",
        batches,
        lambda resume: offers_logic(
            resume, config, settings, campaigns, lookup, clock, wait_for_epoch=wait_for_epoch
        ),
        snapshots=snapshots,
    )
    messages = op.flat_map("offer_messages", decided, _messages(settings))
    objects = stateful_batch(
        "offers_archive",
        op.flat_map("offer_rows", decided, _offer_rows(settings.archive_table_parts)),
        lambda resume: hour_archive_logic(
            resume,
            lambda groups: OfferArchive(
                settings.archive_max_age_s, OFFER_RETIRE_MS, OFFER_MAX_HOLD_MS, groups
            ),
            clock,
            wait_for_epoch=wait_for_epoch,
        ),
        snapshots=snapshots,
    )
    return OfferStreams(
        messages,
        op.flat_map("offer_figures", decided, _figures),
        op.map("offer_minutes", decided, _minutes),
        op.flat_map("offer_pipeline", decided, _pipeline),
        objects,
    )
