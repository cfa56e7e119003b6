"""The dataflow: which steps, in which order. The logic lives in ``operators``; this file only
wires it to Bytewax.

    input → decode (batches) ─dead letters→ <topic>.dlq, pipeline counters
              │ valid events grouped by shard
              ▼
           shard_state (dedupe, watermark; recoverable)
              ├─ minute deltas → events_by_minute (totals) → Redis
              ├─ counters      → pipeline_totals           → Redis
              └─ rows          → archive_buffer (per input partition) → Parquet on S3
           journeys → closed sessions, offers → decisions: buffered in their steps' state,
              written to the same archive sink

Step ids are stable: they name state in the recovery store, so renaming one is a migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from flows.archive_steps import (
    ArchiveLogic,
    hour_archive_logic,
    refuse_archive_in_shard,
    table_rows,
)
from flows.counters import CounterLogic, FigureCounter, MinuteCounter, PipelineCounter
from flows.exchange import Exchange, Placement
from flows.offers_step import add_offers
from flows.profiles import lazy_segment_lookup
from flows.stateful import UpstreamProgress, stateful_batch
from offers.engine import ProfileLookup
from operators.aggregates import (
    JOURNEYS,
    LAG_FIELD,
    OFFERS,
    MinuteDeltas,
    MinuteSeries,
    PipelineTotals,
    RedisKeys,
)
from operators.archive import ArchiveBuffer
from operators.decode import BatchDecoder, shard_name
from operators.journeys import (
    RATIOS,
    JourneyBatchResult,
    JourneyConfig,
    Journeys,
    SegmentLookup,
    SessionRecord,
)
from operators.session_archive import SessionArchive
from operators.shard_state import (
    EVENTS_PER_MINUTE,
    LOW_WATERMARK,
    PIPELINE,
    JourneyBatch,
    Shard,
    ShardBatchResult,
    ShardConfig,
    ShardInput,
)
from sinks.dead_letters import dead_letter_message
from sinks.kafka_topics import KafkaTopicsSink
from sinks.parquet_archive import ParquetArchiveSink
from sinks.redis_projection import RedisProjectionSink
from sources.alignment import ReadAlignment
from sources.files import JsonLinesSource
from sources.kafka import KafkaEventSource
from state.archive_layout import SESSIONS_TABLE
from state.hour_groups import TableRows
from state.moments import NEVER
from state.records import ArchiveObject, Arrival, DeadLetter, InputLag, RawMessage, RedisWrite
from state.settings import Settings
from state.snapshots import decode_snapshot, encode_snapshot
from state.stop import stop_requested
from state.totals import FIGURES, FigureDeltas, Totals

Clock = Callable[[], float]
SHARD_INPUTS: Exchange[ShardInput] = Exchange(ShardInput)
JOURNEY_BATCHES: Exchange[JourneyBatch] = Exchange(JourneyBatch)
MINUTE_DELTAS: Exchange[MinuteDeltas] = Exchange(MinuteDeltas)
FIGURE_DELTAS: Exchange[FigureDeltas] = Exchange(FigureDeltas)
PIPELINE_DELTAS: Exchange[dict[str, int]] = Exchange(dict[str, int])
# A session group is final this long after its hour: longer sessions get objects of their own.
SESSION_RETIRE_MS = 3 * 3600_000
# Version 1 was the journeys state alone, before closed sessions were archived from it.
# Version 2 held the shard's closed sessions for the archive too (see refuse_archive_in_shard).
JOURNEYS_SNAPSHOT_VERSION = 3
JOURNEYS_PER_MINUTE = "journeys_per_minute"


class DecodedOutputs(msgspec.Struct, frozen=True, gc=False):
    """What the decode step makes of one input batch, one stream each."""

    shard_inputs: list[tuple[str, ShardInput | bytes]]
    """Each identity shard's share (packed when its shard is in another process)."""
    dead_letters: list[DeadLetter]
    lag: InputLag | None
    """How far each input partition is behind, when the source measured it."""


class ShardLogic(StatefulBatchLogic[ShardInput | bytes, ShardBatchResult, bytes]):
    """Bytewax shim around :class:`~operators.shard_state.Shard`."""

    def __init__(
        self, config: ShardConfig, resume: bytes | None, alignment: ReadAlignment | None = None
    ) -> None:
        """Build the shard, from its snapshot when resuming; it reports its low watermark to
        ``alignment`` (the process's source partitions pause by it)."""
        self.shard = Shard(config, resume)
        self._alignment = alignment

    def on_batch(self, packed: list[ShardInput | bytes]) -> tuple[Iterable[ShardBatchResult], bool]:
        """Process every batch of this shard queued in this activation, as one."""
        values = SHARD_INPUTS.unpack(packed)
        if len(values) == 1:
            only = values[0]
            result = self.shard.process(only.arrivals, only.progress, only.idle)
        else:
            arrivals = [a for batch in values for a in batch.arrivals]
            progress: dict[str, int] = {}
            idle: set[str] = set()
            for batch in values:  # in arrival order: a partition's last word counts
                for where, newest in batch.progress.items():
                    if newest > progress.get(where, NEVER):
                        progress[where] = newest
                    idle.discard(where)
                idle.update(batch.idle)
            result = self.shard.process(arrivals, progress, idle)
        if self._alignment is not None:
            self._alignment.progressed(self.shard.clock.low_ms())
        return [result], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[ShardBatchResult], bool]:
        """A bounded input ended: decide the identity of every event still undecided (not on a
        requested stop: the input goes on after the restart)."""
        if stop_requested():
            return [], StatefulBatchLogic.RETAIN
        journeys = self.shard.flush_identities()
        if not journeys:
            return [], StatefulBatchLogic.RETAIN
        result = ShardBatchResult({}, {}, {}, journeys, self.shard.watermark_ms)
        return [result], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.shard.snapshot()


class JourneysLogic(StatefulBatchLogic[JourneyBatch | bytes, JourneyBatchResult, bytes]):
    """Bytewax shim around :class:`~operators.journeys.Journeys`."""

    def __init__(
        self,
        journeys: Journeys,
        segments: SegmentLookup,
        upstream: UpstreamProgress | None = None,
    ) -> None:
        """Wrap a journeys shard and the segment lookup; ``upstream`` says when the identity
        shards' watermark may be acted on."""
        self.journeys = journeys
        self._segments = segments
        self._upstream = upstream or UpstreamProgress(wait_for_epoch=False)

    def _stamped(self, result: JourneyBatchResult) -> JourneyBatchResult:
        result.upstream_ms = self.journeys.upstream_ms
        result.open_from_ms = self.journeys.open_from_ms()
        return result

    def on_batch(
        self, packed: list[JourneyBatch | bytes]
    ) -> tuple[Iterable[JourneyBatchResult], bool]:
        """Take the identified events of this activation as one batch."""
        values = JOURNEY_BATCHES.unpack(packed)
        watermark = self._upstream.heard(max(batch.watermark_ms for batch in values))
        result = self.journeys.process([batch.items for batch in values], self._segments, watermark)
        return [self._stamped(result)], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[JourneyBatchResult], bool]:
        """A bounded input ended (a back-fill): every open session is final (not on a requested
        stop: they stay open in the saved state)."""
        if stop_requested():
            return [], StatefulBatchLogic.RETAIN
        self.journeys.upstream_ms = max(self.journeys.upstream_ms, self._upstream.at_end())
        result = self.journeys.flush(self._segments)
        return [self._stamped(result)], StatefulBatchLogic.RETAIN

    def epoch_closed(self) -> None:
        """The watermarks heard in the epoch are safe to act on."""
        self._upstream.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        self.epoch_closed()
        return encode_snapshot(
            JourneysLogicSnapshot(JOURNEYS_SNAPSHOT_VERSION, self.journeys.snapshot())
        )


class JourneysLogicSnapshot(msgspec.Struct, frozen=True):
    """The journeys shard's state."""

    version: int
    journeys: bytes


def _journeys_migration(version: int, snapshot: bytes) -> JourneysLogicSnapshot:
    raise refuse_archive_in_shard("journeys", version)


def _journeys_logic(
    resume: bytes | None,
    config: JourneyConfig,
    segments: SegmentLookup,
    wait_for_epoch: bool,
) -> JourneysLogic:
    state = (
        decode_snapshot(
            resume, JourneysLogicSnapshot, JOURNEYS_SNAPSHOT_VERSION, _journeys_migration
        )
        if resume is not None
        else None
    )
    return JourneysLogic(
        Journeys(config, state.journeys if state else None),
        segments,
        upstream=UpstreamProgress(wait_for_epoch=wait_for_epoch),
    )


def _decode_step(
    settings: Settings, alignment: ReadAlignment | None, exchange: Exchange[ShardInput]
) -> Callable[[list[RawMessage]], Iterable[DecodedOutputs]]:
    decoder = BatchDecoder(settings.shard_count, settings.max_event_bytes)

    shard_names = [shard_name(i) for i in range(settings.shard_count)]
    pack = exchange.pack

    def decode(items: list[RawMessage]) -> Iterable[DecodedOutputs]:
        decoded = decoder.decode(items)
        # Every shard hears of the input's progress, events or not (see ShardInput).
        by_shard = decoded.by_shard
        progress, idle = decoded.progress, decoded.idle
        if alignment is not None and progress:
            alignment.read(progress)
        # A shard without events of this batch gets only the progress: one input for them all
        # (packed once, for the shards on other processes).
        nothing = ShardInput([], progress, idle) if progress or idle else None
        nothing_packed: ShardInput | bytes | None = None
        out: list[tuple[str, ShardInput | bytes]] = []
        for name in shard_names:
            events = by_shard.get(name)
            if events is not None:
                out.append((name, pack(name, ShardInput(events, progress, idle))))
            elif nothing is not None:
                sent = pack(name, nothing)
                if isinstance(sent, bytes):
                    if nothing_packed is None:
                        nothing_packed = sent
                    sent = nothing_packed
                out.append((name, sent))
        lag = InputLag(decoded.lag) if decoded.lag else None
        return [DecodedOutputs(out, decoded.dead_letters, lag)]

    return decode


def _events_per_minute(
    minutes: Exchange[MinuteDeltas],
) -> Callable[[tuple[str, ShardBatchResult]], tuple[str, MinuteDeltas | bytes]]:
    pack = minutes.pack

    def route(item: tuple[str, ShardBatchResult]) -> tuple[str, MinuteDeltas | bytes]:
        result = item[1]
        # Every result, counts or not: the series closes its minutes by the watermark.
        deltas = MinuteDeltas(result.watermark_ms, result.minute_counts)
        return EVENTS_PER_MINUTE, pack(EVENTS_PER_MINUTE, deltas)

    return route


def _shard_pipeline(
    lateness_ms: int,
) -> Callable[[tuple[str, ShardBatchResult]], tuple[str, dict[str, int]]]:
    def route(item: tuple[str, ShardBatchResult]) -> tuple[str, dict[str, int]]:
        result = item[1]
        if result.watermark_ms > NEVER:
            # With how far every input partition has got, for the pipeline-health figures.
            return PIPELINE, {**result.pipeline, LOW_WATERMARK: result.watermark_ms + lateness_ms}
        return PIPELINE, result.pipeline

    return route


def _route_journeys(
    exchange: Exchange[JourneyBatch],
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, Any]]]:
    pack = exchange.pack

    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, Any]]:
        result = item[1]
        for name, items in result.journeys.items():
            yield name, pack(name, JourneyBatch(result.watermark_ms, items))

    return route


def _journey_figures(
    figures: Exchange[FigureDeltas],
) -> Callable[[tuple[str, JourneyBatchResult]], Iterable[tuple[str, FigureDeltas | bytes]]]:
    def route(item: tuple[str, JourneyBatchResult]) -> Iterable[tuple[str, FigureDeltas | bytes]]:
        figure_deltas = item[1].figures
        return [(FIGURES, figures.pack(FIGURES, figure_deltas))] if figure_deltas else []

    return route


def _journey_minutes(
    minutes: Exchange[MinuteDeltas],
) -> Callable[[tuple[str, JourneyBatchResult]], tuple[str, MinuteDeltas | bytes]]:
    def route(item: tuple[str, JourneyBatchResult]) -> tuple[str, MinuteDeltas | bytes]:
        result = item[1]
        deltas = MinuteDeltas(result.upstream_ms, result.minutes, item[0], result.open_from_ms)
        return JOURNEYS_PER_MINUTE, minutes.pack(JOURNEYS_PER_MINUTE, deltas)

    return route


def _journey_pipeline(item: tuple[str, JourneyBatchResult]) -> Iterable[tuple[str, dict[str, int]]]:
    pipeline = item[1].pipeline
    return [(PIPELINE, pipeline)] if pipeline else []


def _route_sessions(parts: int) -> Callable[[tuple[str, JourneyBatchResult]], Iterable[Any]]:
    def route(item: tuple[str, JourneyBatchResult]) -> Iterable[tuple[str, TableRows]]:
        result = item[1]
        return table_rows(
            SESSIONS_TABLE,
            parts,
            item[0],
            result.upstream_ms,
            result.sessions,
            _session_id,
            result.open_from_ms,
        )

    return route


def _session_id(record: SessionRecord) -> str:
    return record.session_id


def _route_archive(
    exchange: Exchange[list[Arrival]],
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, Any]]]:
    pack = exchange.pack

    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, Any]]:
        return [(name, pack(name, rows)) for name, rows in item[1].archive_rows.items()]

    return route


def _shard_inputs(decoded: DecodedOutputs) -> list[tuple[str, ShardInput | bytes]]:
    return decoded.shard_inputs


def _dead_letters(decoded: DecodedOutputs) -> list[DeadLetter]:
    return decoded.dead_letters


def _input_lag(decoded: DecodedOutputs) -> list[tuple[str, dict[str, int]]]:
    if decoded.lag is None:
        return []
    return [(PIPELINE, {f"{LAG_FIELD}{p}": n for p, n in decoded.lag.behind.items()})]


def _dead_letter_counts(dead: DeadLetter) -> tuple[str, dict[str, int]]:
    return PIPELINE, {"dead_letters": 1, f"dead_letters.{dead.stage}": 1}


def identity_shard_config(settings: Settings, positions: tuple[str, ...]) -> ShardConfig:
    """What the identity shards need of the settings, given the input's partitions."""
    return ShardConfig(
        allowed_lateness_ms=settings.allowed_lateness_s * 1000,
        dedupe_window_ms=settings.dedupe_window_s * 1000,
        dedupe_max_ids=settings.dedupe_max_ids_per_shard,
        session_gap_ms=settings.session_gap_s * 1000,
        device_idle_ms=settings.device_idle_s * 1000,
        journey_shards=settings.shard_count,
        input_positions=positions,
        offers=settings.campaigns_dir is not None,
    )


def journeys_config(settings: Settings) -> JourneyConfig:
    """What the journeys shards need of the settings."""
    return JourneyConfig(
        prefix=settings.redis_prefix,
        gap_ms=settings.session_gap_s * 1000,
        allowed_lateness_ms=settings.allowed_lateness_s * 1000,
        stitch_allowance_ms=settings.stitch_allowance_s * 1000,
        funnels=settings.funnel_definitions(),
    )


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
    shard_inputs: Exchange[ShardInput] = Exchange(ShardInput, placement)
    minute_deltas: Exchange[MinuteDeltas] = Exchange(MinuteDeltas, placement)
    figure_deltas_out: Exchange[FigureDeltas] = Exchange(FigureDeltas, placement)
    decoded = op.flat_map_batch("decode", raw, _decode_step(settings, alignment, shard_inputs))
    by_shard = op.flat_map("shard_inputs", decoded, _shard_inputs)
    dead = op.flat_map("dead_letter_items", decoded, _dead_letters)
    input_lag = op.flat_map("input_lag", decoded, _input_lag)

    shard_config = identity_shard_config(settings, input_positions(source))
    shard_out = stateful_batch(
        "shard_state",
        by_shard,
        lambda resume: ShardLogic(shard_config, resume, alignment),
        snapshots=snapshots,
    )

    keys = RedisKeys(settings.redis_prefix)
    events_per_minute = op.map("events_per_minute", shard_out, _events_per_minute(minute_deltas))
    shard_pipeline = op.map(
        "shard_pipeline", shard_out, _shard_pipeline(settings.allowed_lateness_s * 1000)
    )
    dead_counts = op.map("dead_letter_counts", dead, _dead_letter_counts)
    journey_config = journeys_config(settings)
    lookup = segments or lazy_segment_lookup(settings)
    journey_out = stateful_batch(
        "journeys",
        op.flat_map(
            "journey_events",
            shard_out,
            _route_journeys(Exchange(JourneyBatch, placement)),
        ),
        lambda resume: _journeys_logic(resume, journey_config, lookup, wait_for_epoch),
        snapshots=snapshots,
    )
    figure_deltas = op.flat_map("journey_figures", journey_out, _journey_figures(figure_deltas_out))
    journey_minutes = op.map("journey_minutes", journey_out, _journey_minutes(minute_deltas))
    pipeline_deltas = [shard_pipeline, dead_counts, input_lag]
    pipeline_deltas.append(op.flat_map("journey_pipeline", journey_out, _journey_pipeline))
    offer_minute_writes: list[Stream[tuple[str, list[RedisWrite]]]] = []
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
        figure_deltas = op.merge("all_figures", figure_deltas, offers.figures)
        offer_objects.append(offers.objects)
        pipeline_deltas.append(offers.pipeline)
        offer_minute_writes.append(
            stateful_batch(
                "offers_by_minute",
                offers.minutes,
                lambda resume: CounterLogic(
                    MinuteCounter(
                        MinuteSeries(
                            keys,
                            settings.allowed_lateness_s * 1000,
                            settings.minute_retention_s,
                            resume,
                            OFFERS,
                        ),
                        wait_for_epoch,
                    ),
                    MINUTE_DELTAS,
                ),
                snapshots=snapshots,
            )
        )
    figure_writes = stateful_batch(
        "figures",
        figure_deltas,
        lambda resume: CounterLogic(
            FigureCounter(
                Totals(RATIOS, settings.figure_retention_days, settings.figure_expire_s, resume)
            ),
            FIGURE_DELTAS,
        ),
        snapshots=snapshots,
    )
    # Sessions are counted when they close: a minute's journey figures are final only after
    # the gap and the stitching allowance past the identity shards' watermark.
    journey_minute_delay_ms = (settings.session_gap_s + settings.stitch_allowance_s + 300) * 1000
    journey_minute_writes = stateful_batch(
        "journeys_by_minute",
        journey_minutes,
        lambda resume: CounterLogic(
            MinuteCounter(
                MinuteSeries(
                    keys, journey_minute_delay_ms, settings.minute_retention_s, resume, JOURNEYS
                ),
                wait_for_epoch,
            ),
            MINUTE_DELTAS,
        ),
        snapshots=snapshots,
    )
    minute_writes = stateful_batch(
        "events_by_minute",
        events_per_minute,
        # The identity shards' watermark already allows for the lateness: what is older is late
        # and counts in no minute.
        lambda resume: CounterLogic(
            MinuteCounter(
                MinuteSeries(keys, 0, settings.minute_retention_s, resume), wait_for_epoch
            ),
            MINUTE_DELTAS,
        ),
        snapshots=snapshots,
    )
    # Not packed (small, one per batch): the type says what the counter's shim accepts.
    all_pipeline_deltas: Stream[tuple[str, dict[str, int] | bytes]] = op.merge(
        "all_pipeline_deltas", *pipeline_deltas
    )
    pipeline_writes = stateful_batch(
        "pipeline_totals",
        all_pipeline_deltas,
        lambda resume: CounterLogic(PipelineCounter(PipelineTotals(keys, resume)), PIPELINE_DELTAS),
        snapshots=snapshots,
    )
    redis_writes = op.map(
        "redis_writes",
        op.merge(
            "all_redis_writes",
            minute_writes,
            pipeline_writes,
            figure_writes,
            journey_minute_writes,
            *offer_minute_writes,
        ),
        lambda kv: kv[1],
    )
    op.output(
        "redis",
        redis_writes,
        redis_sink
        or RedisProjectionSink(
            settings.redis_url, settings.outage_limit_s, settings.redis_options()
        ),
    )

    rows = op.flat_map(
        "archive_rows", shard_out, _route_archive(Exchange(list[Arrival], placement))
    )
    objects = stateful_batch(
        "archive_buffer",
        rows,
        lambda resume: ArchiveLogic(
            ArchiveBuffer(settings.archive_chunk_rows, settings.archive_max_age_s, resume),
            clock,
            resumed=resume is not None,
        ),
        snapshots=snapshots,
    )
    session_objects = stateful_batch(
        "sessions_archive",
        op.flat_map("session_rows", journey_out, _route_sessions(settings.archive_table_parts)),
        lambda resume: hour_archive_logic(
            resume,
            lambda groups: SessionArchive(settings.archive_max_age_s, SESSION_RETIRE_MS, groups),
            clock,
            wait_for_epoch=wait_for_epoch,
        ),
        snapshots=snapshots,
    )
    op.output(
        "archive",
        op.merge("all_archive_objects", objects, session_objects, *offer_objects),
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
