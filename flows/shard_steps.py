"""The identity and journeys shards as Bytewax steps: shims around the native core's
:class:`~operators.shard_state.Shard` and :class:`~operators.journeys.Journeys`, their
snapshots, and what they take of the settings.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from bytewax.operators import StatefulBatchLogic

from flows.archive_steps import refuse_archive_in_shard
from flows.exchange import Exchange
from flows.stateful import UpstreamProgress
from operators.journeys import JourneyBatchResult, JourneyConfig, Journeys, SegmentLookup
from operators.shard_state import (
    JourneyBatch,
    Shard,
    ShardBatchResult,
    ShardConfig,
    ShardInput,
)
from sources.alignment import ReadAlignment
from state.moments import NEVER
from state.settings import Settings
from state.snapshots import decode_snapshot, encode_snapshot
from state.stop import stop_requested

SHARD_INPUTS: Exchange[ShardInput] = Exchange(ShardInput)
JOURNEY_BATCHES: Exchange[JourneyBatch] = Exchange(JourneyBatch)
# Version 1 was the journeys state alone, before closed sessions were archived from it.
# Version 2 held the shard's closed sessions for the archive too (see refuse_archive_in_shard).
JOURNEYS_SNAPSHOT_VERSION = 3


class ShardLogic(StatefulBatchLogic[ShardInput | bytes, ShardBatchResult, bytes]):
    """Bytewax shim around :class:`~operators.shard_state.Shard`."""

    def __init__(
        self, config: ShardConfig, resume: bytes | None, alignment: ReadAlignment | None = None
    ) -> None:
        """Build the shard, from its snapshot when resuming; it reports its low watermark to
        ``alignment`` (the process's source partitions pause by it).
        """
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
        requested stop: the input goes on after the restart).
        """
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
        shards' watermark may be acted on.
        """
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
        stop: they stay open in the saved state).
        """
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


def journeys_logic(
    resume: bytes | None,
    config: JourneyConfig,
    segments: SegmentLookup,
    wait_for_epoch: bool,
) -> JourneysLogic:
    """A journeys shard's step logic, from its snapshot when resuming."""
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
        stitch_allowance_ms=settings.stitch_allowance_s * 1000,
        funnels=settings.funnel_definitions(),
    )
