"""The small steps between the stateful ones: the decode step's output split by stream, and
each stateful step's results routed to the next one (packed for another process by an
:class:`~flows.exchange.Exchange`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from flows.archive_steps import table_rows
from flows.exchange import Exchange
from operators.aggregates import LAG_FIELD, MinuteDeltas
from operators.decode import BatchDecoder, shard_name
from operators.journeys import JourneyBatchResult, SessionRecord
from operators.shard_state import (
    EVENTS_PER_MINUTE,
    LOW_WATERMARK,
    PIPELINE,
    JourneyBatch,
    ShardBatchResult,
    ShardInput,
)
from sources.alignment import ReadAlignment
from state.archive_layout import SESSIONS_TABLE
from state.hour_groups import TableRows
from state.moments import NEVER
from state.records import Arrival, DeadLetter, InputLag, RawMessage
from state.settings import Settings
from state.totals import FIGURES, FigureDeltas

JOURNEYS_PER_MINUTE = "journeys_per_minute"


class DecodedOutputs(msgspec.Struct, frozen=True, gc=False):
    """What the decode step makes of one input batch, one stream each."""

    shard_inputs: list[tuple[str, ShardInput | bytes]]
    """Each identity shard's share (packed when its shard is in another process)."""
    dead_letters: list[DeadLetter]
    lag: InputLag | None
    """How far each input partition is behind, when the source measured it."""


def decode_step(
    settings: Settings, alignment: ReadAlignment | None, exchange: Exchange[ShardInput]
) -> Callable[[list[RawMessage]], Iterable[DecodedOutputs]]:
    """The decode step: raw messages to each identity shard's share, dead letters, lag."""
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


def events_per_minute(
    minutes: Exchange[MinuteDeltas],
) -> Callable[[tuple[str, ShardBatchResult]], tuple[str, MinuteDeltas | bytes]]:
    """Each identity shard result's per-minute event counts, to the minute series."""
    pack = minutes.pack

    def route(item: tuple[str, ShardBatchResult]) -> tuple[str, MinuteDeltas | bytes]:
        result = item[1]
        # Every result, counts or not: the series closes its minutes by the watermark.
        deltas = MinuteDeltas(result.watermark_ms, result.minute_counts)
        return EVENTS_PER_MINUTE, pack(EVENTS_PER_MINUTE, deltas)

    return route


def shard_pipeline(
    lateness_ms: int,
) -> Callable[[tuple[str, ShardBatchResult]], tuple[str, dict[str, int]]]:
    """Each identity shard result's pipeline counters, with the low watermark."""

    def route(item: tuple[str, ShardBatchResult]) -> tuple[str, dict[str, int]]:
        result = item[1]
        if result.watermark_ms > NEVER:
            # With how far every input partition has got, for the pipeline-health figures.
            return PIPELINE, {**result.pipeline, LOW_WATERMARK: result.watermark_ms + lateness_ms}
        return PIPELINE, result.pipeline

    return route


def route_journeys(
    exchange: Exchange[JourneyBatch],
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, Any]]]:
    """Each identity shard result's identified events, to their journeys shards."""
    pack = exchange.pack

    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, Any]]:
        result = item[1]
        for name, items in result.journeys.items():
            yield name, pack(name, JourneyBatch(result.watermark_ms, items))

    return route


def journey_figures(
    figures: Exchange[FigureDeltas],
) -> Callable[[tuple[str, JourneyBatchResult]], Iterable[tuple[str, FigureDeltas | bytes]]]:
    """Each journeys shard result's figure deltas, to the figure totals."""

    def route(item: tuple[str, JourneyBatchResult]) -> Iterable[tuple[str, FigureDeltas | bytes]]:
        figure_deltas = item[1].figures
        return [(FIGURES, figures.pack(FIGURES, figure_deltas))] if figure_deltas else []

    return route


def journey_minutes(
    minutes: Exchange[MinuteDeltas],
) -> Callable[[tuple[str, JourneyBatchResult]], tuple[str, MinuteDeltas | bytes]]:
    """Each journeys shard result's per-minute figures, to the journeys series."""

    def route(item: tuple[str, JourneyBatchResult]) -> tuple[str, MinuteDeltas | bytes]:
        result = item[1]
        deltas = MinuteDeltas(result.upstream_ms, result.minutes, item[0], result.open_from_ms)
        return JOURNEYS_PER_MINUTE, minutes.pack(JOURNEYS_PER_MINUTE, deltas)

    return route


def journey_pipeline(item: tuple[str, JourneyBatchResult]) -> Iterable[tuple[str, dict[str, int]]]:
    """Each journeys shard result's pipeline counters."""
    pipeline = item[1].pipeline
    return [(PIPELINE, pipeline)] if pipeline else []


def route_sessions(parts: int) -> Callable[[tuple[str, JourneyBatchResult]], Iterable[Any]]:
    """Each journeys shard result's closed sessions, as rows of the sessions table."""

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


def route_archive(
    exchange: Exchange[list[Arrival]],
) -> Callable[[tuple[str, ShardBatchResult]], Iterable[tuple[str, Any]]]:
    """Each identity shard result's accepted events, to the events archive buffers."""
    pack = exchange.pack

    def route(item: tuple[str, ShardBatchResult]) -> Iterable[tuple[str, Any]]:
        return [(name, pack(name, rows)) for name, rows in item[1].archive_rows.items()]

    return route


def shard_inputs(decoded: DecodedOutputs) -> list[tuple[str, ShardInput | bytes]]:
    """The decode step's shares of the identity shards."""
    return decoded.shard_inputs


def dead_letters(decoded: DecodedOutputs) -> list[DeadLetter]:
    """The decode step's dead letters."""
    return decoded.dead_letters


def input_lag(decoded: DecodedOutputs) -> list[tuple[str, dict[str, int]]]:
    """How far each input partition is behind, as pipeline counters."""
    if decoded.lag is None:
        return []
    return [(PIPELINE, {f"{LAG_FIELD}{p}": n for p, n in decoded.lag.behind.items()})]


def dead_letter_counts(dead: DeadLetter) -> tuple[str, dict[str, int]]:
    """One dead letter, as pipeline counters (all, and by stage)."""
    return PIPELINE, {"dead_letters": 1, f"dead_letters.{dead.stage}": 1}
