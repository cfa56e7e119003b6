"""The dataflow: which steps, in which order (docs/architecture.md draws it).

    input → decode ─dead letters→ <topic>.dlq
              │ each identity shard's share (routes.py)
              ▼
           shard_state: identity shards, native core (dedupe, devices, logins, watermark)
              ├─ identified events → journeys: journeys shards, native core (sessions, figures)
              │                        ├─ figure deltas, minutes → totals, minute series → Redis
              │                        └─ closed sessions → sessions_archive → Parquet on S3
              ├─ accepted events → archive_buffer (per input partition) → Parquet on S3
              └─ decided events → offers (offers_step.py) → offers and decisions topics, S3

The steps' logic lives in ``operators`` and ``offers``; the Bytewax shims in
``shard_steps.py``, ``archive_steps.py``, ``counters.py`` and ``offers_step.py``. Step ids are
stable: they name state in the recovery store, so renaming one is a migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows import routes
from flows.archive_steps import (
    ArchiveLogic,
    hour_archive_logic,
)
from flows.counters import CounterLogic, FigureCounter, MinuteCounter, PipelineCounter
from flows.exchange import Exchange, Placement
from flows.offers_step import add_offers
from flows.profiles import lazy_segment_lookup
from flows.shard_steps import (
    ShardLogic,
    identity_shard_config,
    journeys_config,
    journeys_logic,
)
from flows.stateful import stateful_batch
from offers.engine import ProfileLookup
from operators.aggregates import (
    EVENTS_BY_TYPE,
    JOURNEYS,
    OFFERS,
    MinuteDeltas,
    MinuteFamily,
    MinuteSeries,
    PipelineTotals,
    RedisKeys,
)
from operators.archive import ArchiveBuffer
from operators.journeys import RATIOS, JourneyBatchResult, SegmentLookup
from operators.session_archive import SessionArchive
from operators.shard_state import JourneyBatch, ShardBatchResult, ShardInput
from sinks.dead_letters import dead_letter_message
from sinks.kafka_topics import KafkaTopicsSink
from sinks.parquet_archive import ParquetArchiveSink
from sinks.redis_projection import RedisProjectionSink
from sources.files import JsonLinesSource
from sources.kafka import KafkaEventSource
from state.records import ArchiveObject, Arrival, RedisWrite
from state.settings import Settings
from state.totals import FigureDeltas, Totals

Clock = Callable[[], float]
MINUTE_DELTAS: Exchange[MinuteDeltas] = Exchange(MinuteDeltas)
FIGURE_DELTAS: Exchange[FigureDeltas] = Exchange(FigureDeltas)
PIPELINE_DELTAS: Exchange[dict[str, int]] = Exchange(dict[str, int])
# A session group is final this long after its hour: longer sessions get objects of their own.
SESSION_RETIRE_MS = 3 * 3600_000


def input_positions(source: Source[Any]) -> tuple[str, ...]:
    """Every input partition of a Kafka or file source, as ``<source>#<partition>``."""
    if isinstance(source, KafkaEventSource | JsonLinesSource):
        parts = source.list_parts()
        if isinstance(source, JsonLinesSource):
            return tuple(f"file:{part}#0" for part in parts)
        return tuple(f"{part.split('-', 1)[1]}#{part.split('-', 1)[0]}" for part in parts)
    return ()


def build_flow(
    settings: Settings,
    source: Source[Any],
    *,
    redis_sink: Sink[list[RedisWrite]] | None = None,
    archive_sink: Sink[tuple[str, list[ArchiveObject]]] | None = None,
    dead_letter_sink: Sink[Any] | None = None,
    clock: Clock = time.time,
    segments: SegmentLookup | None = None,
    offers_sink: Sink[Any] | None = None,
    profiles: ProfileLookup | None = None,
    snapshots: bool = True,
    workers: int = 1,
    placement: Placement | None = None,
) -> Dataflow:
    """Assemble the job's dataflow.

    Args:
        settings: the job's configuration.
        source: Kafka, file replay, or a testing source of raw messages.
        redis_sink: override for tests; defaults to the Redis at ``settings.redis_url``.
        archive_sink: override for tests; defaults to the S3 archive.
        dead_letter_sink: override for tests; defaults to ``<topic>.dlq`` on Kafka.
        clock: wall clock for the archive's age-based writes.
        segments: customer id → segment; defaults to the customer store in Redis.
        offers_sink: override for tests; defaults to the offers and decisions topics on Kafka.
        profiles: customer id → profile for the offers; defaults to the customer store.
        snapshots: whether the stateful steps build snapshots (only a recovery store reads
            them; see :mod:`flows.stateful`).
        workers: how many workers run the flow, over every process (several: the steps after
            the identity shards act on a watermark only once its epoch has closed, see
            :class:`~flows.stateful.UpstreamProgress`).
        placement: on a cluster, which state keys live in this process: items to keys on
            other processes cross as msgpack bytes (see :mod:`flows.exchange`).
    """
    alignment = source.alignment if isinstance(source, KafkaEventSource) else None
    wait_for_epoch = workers > 1
    flow = Dataflow("bank_clickstream")
    raw = op.input("input", flow, source)
    minute_deltas: Exchange[MinuteDeltas] = Exchange(MinuteDeltas, placement)
    shard_inputs: Exchange[ShardInput] = Exchange(ShardInput, placement)
    decoded = op.flat_map_batch(
        "decode", raw, routes.decode_step(settings, alignment, shard_inputs)
    )
    dead = op.flat_map("dead_letter_items", decoded, routes.dead_letters)
    shard_config = identity_shard_config(settings, input_positions(source))
    shard_out = stateful_batch(
        "shard_state",
        op.flat_map("shard_inputs", decoded, routes.shard_inputs),
        lambda resume: ShardLogic(shard_config, resume, alignment),
        snapshots=snapshots,
    )
    journey_config = journeys_config(settings)
    lookup = segments or lazy_segment_lookup(settings)
    journey_out = stateful_batch(
        "journeys",
        op.flat_map(
            "journey_events", shard_out, routes.route_journeys(Exchange(JourneyBatch, placement))
        ),
        lambda resume: journeys_logic(resume, journey_config, lookup, wait_for_epoch),
        snapshots=snapshots,
    )

    figures = _Figures(
        minutes=op.map("events_per_minute", shard_out, routes.events_per_minute(minute_deltas)),
        journey_minutes=op.map(
            "journey_minutes", journey_out, routes.journey_minutes(minute_deltas)
        ),
        figures=op.flat_map(
            "journey_figures",
            journey_out,
            routes.journey_figures(Exchange(FigureDeltas, placement)),
        ),
        pipeline=[
            op.map(
                "shard_pipeline",
                shard_out,
                routes.shard_pipeline(settings.allowed_lateness_s * 1000),
            ),
            op.map("dead_letter_counts", dead, routes.dead_letter_counts),
            op.flat_map("input_lag", decoded, routes.input_lag),
            op.flat_map("journey_pipeline", journey_out, routes.journey_pipeline),
        ],
    )
    offer_objects: list[Stream[tuple[str, list[ArchiveObject]]]] = []
    if settings.campaigns_dir is not None:
        offers = add_offers(
            shard_out,
            settings,
            profiles=profiles,
            clock=clock,
            snapshots=snapshots,
            wait_for_epoch=wait_for_epoch,
            placement=placement,
        )
        # An offer replayed after a crash is not sent again (one SMS per offer).
        offers_out = offers_sink or KafkaTopicsSink(
            settings.kafka_config(),
            outage_limit_s=settings.outage_limit_s,
            once_topic=settings.offers_topic,
        )
        op.output("offers_out", offers.messages, offers_out)
        figures.figures = op.merge("all_figures", figures.figures, offers.figures)
        figures.pipeline.append(offers.pipeline)
        figures.offer_minutes = offers.minutes
        offer_objects.append(offers.objects)

    op.output(
        "redis",
        _redis_writes(settings, figures, snapshots=snapshots, wait_for_epoch=wait_for_epoch),
        redis_sink
        or RedisProjectionSink(
            settings.redis_url, settings.outage_limit_s, settings.redis_options()
        ),
    )
    archive_objects = [
        _events_archive(settings, shard_out, placement, clock, snapshots=snapshots),
        _sessions_archive(
            settings, journey_out, clock, snapshots=snapshots, wait_for_epoch=wait_for_epoch
        ),
        *offer_objects,
    ]
    op.output(
        "archive",
        op.merge("all_archive_objects", *archive_objects),
        archive_sink
        or ParquetArchiveSink(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.storage_options(),
            workers=workers,
            outage_limit_s=settings.outage_limit_s,
        ),
    )
    dlq_messages = op.map(
        "dead_letter_messages", dead, lambda d: dead_letter_message(d, settings.dlq_topic_for)
    )
    op.output(
        "dead_letters",
        dlq_messages,
        dead_letter_sink
        or KafkaTopicsSink(settings.kafka_config(), outage_limit_s=settings.outage_limit_s),
    )
    return flow


@dataclass
class _Figures:
    """The streams of figure deltas the Redis figures are counted from."""

    minutes: Stream[tuple[str, MinuteDeltas | bytes]]
    """Events per minute, from the identity shards."""
    journey_minutes: Stream[tuple[str, MinuteDeltas | bytes]]
    """Journey figures per minute, from the journeys shards."""
    figures: Stream[tuple[str, FigureDeltas | bytes]]
    """Day figures (journeys, offers)."""
    pipeline: list[Stream[tuple[str, dict[str, int]]]]
    """Pipeline-health counters of every step."""
    offer_minutes: Stream[tuple[str, MinuteDeltas | bytes]] | None = None
    """Offer figures per minute, when offers are on."""


def _redis_writes(
    settings: Settings, figures: _Figures, *, snapshots: bool, wait_for_epoch: bool
) -> Stream[list[RedisWrite]]:
    """The totals and minute series of every figure, as writes to Redis."""
    keys = RedisKeys(settings.redis_prefix)
    retention_s = settings.minute_retention_s

    def minute_series(
        step: str,
        deltas: Stream[tuple[str, MinuteDeltas | bytes]],
        delay_ms: int,
        family: MinuteFamily = EVENTS_BY_TYPE,
    ) -> Stream[tuple[str, list[RedisWrite]]]:
        return stateful_batch(
            step,
            deltas,
            lambda resume: CounterLogic(
                MinuteCounter(
                    MinuteSeries(keys, delay_ms, retention_s, resume, family), wait_for_epoch
                ),
                MINUTE_DELTAS,
            ),
            snapshots=snapshots,
        )

    # The identity shards' watermark already allows for the lateness: what is older is late
    # and counts in no minute.
    writes = [minute_series("events_by_minute", figures.minutes, 0)]
    # Sessions are counted when they close: a minute's journey figures are final only after
    # the gap and the stitching allowance past the identity shards' watermark.
    journey_delay_ms = (settings.session_gap_s + settings.stitch_allowance_s + 300) * 1000
    writes.append(
        minute_series("journeys_by_minute", figures.journey_minutes, journey_delay_ms, JOURNEYS)
    )
    if figures.offer_minutes is not None:
        offers_delay_ms = settings.allowed_lateness_s * 1000
        writes.append(
            minute_series("offers_by_minute", figures.offer_minutes, offers_delay_ms, OFFERS)
        )
    retention_days, expire_s = settings.figure_retention_days, settings.figure_expire_s
    writes.append(
        stateful_batch(
            "figures",
            figures.figures,
            lambda resume: CounterLogic(
                FigureCounter(Totals(RATIOS, retention_days, expire_s, resume)), FIGURE_DELTAS
            ),
            snapshots=snapshots,
        )
    )
    # Not packed (small, one per batch): the type says what the counter's shim accepts.
    pipeline: Stream[tuple[str, dict[str, int] | bytes]] = op.merge(
        "all_pipeline_deltas", *figures.pipeline
    )
    writes.append(
        stateful_batch(
            "pipeline_totals",
            pipeline,
            lambda resume: CounterLogic(
                PipelineCounter(PipelineTotals(keys, resume)), PIPELINE_DELTAS
            ),
            snapshots=snapshots,
        )
    )
    return op.map("redis_writes", op.merge("all_redis_writes", *writes), lambda kv: kv[1])


def _events_archive(
    settings: Settings,
    shard_out: Stream[tuple[str, ShardBatchResult]],
    placement: Placement | None,
    clock: Clock,
    *,
    snapshots: bool,
) -> Stream[tuple[str, list[ArchiveObject]]]:
    """The accepted events, buffered per input partition into Parquet objects."""
    rows = op.flat_map(
        "archive_rows", shard_out, routes.route_archive(Exchange(list[Arrival], placement))
    )
    return stateful_batch(
        "archive_buffer",
        rows,
        lambda resume: ArchiveLogic(
            ArchiveBuffer(settings.archive_chunk_rows, settings.archive_max_age_s, resume),
            clock,
            resumed=resume is not None,
        ),
        snapshots=snapshots,
    )


def _sessions_archive(
    settings: Settings,
    journey_out: Stream[tuple[str, JourneyBatchResult]],
    clock: Clock,
    *,
    snapshots: bool,
    wait_for_epoch: bool,
) -> Stream[tuple[str, list[ArchiveObject]]]:
    """The closed sessions, buffered by hour into Parquet objects."""
    return stateful_batch(
        "sessions_archive",
        op.flat_map(
            "session_rows", journey_out, routes.route_sessions(settings.archive_table_parts)
        ),
        lambda resume: hour_archive_logic(
            resume,
            lambda groups: SessionArchive(settings.archive_max_age_s, SESSION_RETIRE_MS, groups),
            clock,
            wait_for_epoch=wait_for_epoch,
        ),
        snapshots=snapshots,
    )
