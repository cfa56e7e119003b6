"""The counter-style steps: deltas in, Redis writes out, state snapshotted as bytes.

The figure totals, the per-minute series and the pipeline counters differ only in what they
count; :class:`CounterLogic` is their one Bytewax shim, around anything that implements
:class:`Counter`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from bytewax.operators import StatefulBatchLogic

from flows.exchange import Exchange
from flows.stateful import UpstreamProgress
from operators.aggregates import MinuteDeltas, MinuteSeries, PipelineTotals
from state.records import RedisWrite
from state.stop import stop_requested
from state.totals import FigureDeltas, Totals

V = TypeVar("V")


class Counter(Protocol[V]):
    """What a counter-style step's state does."""

    def take(self, values: list[V]) -> list[RedisWrite]:
        """Add a batch of deltas; return the writes that make Redis show the new figures."""

    def at_end(self) -> list[RedisWrite]:
        """A bounded input ended: the last writes, if any."""

    def epoch_closed(self) -> None:
        """Every item of the epoch just closed has reached the step."""

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""


class CounterLogic(StatefulBatchLogic[V | bytes, list[RedisWrite], bytes], Generic[V]):
    """Bytewax shim around a :class:`Counter`; ``exchange`` unpacks the deltas that crossed
    from another process as bytes.
    """

    def __init__(self, counter: Counter[V], exchange: Exchange[V]) -> None:
        """Wrap a counter."""
        self.counter = counter
        self._exchange = exchange

    def on_batch(self, packed: list[V | bytes]) -> tuple[Iterable[list[RedisWrite]], bool]:
        """Add the deltas and emit the writes."""
        return [self.counter.take(self._exchange.unpack(packed))], self.RETAIN

    def on_eof(self) -> tuple[Iterable[list[RedisWrite]], bool]:
        """A bounded input ended."""
        writes = self.counter.at_end()
        return ([writes] if writes else []), self.RETAIN

    def epoch_closed(self) -> None:
        """See :class:`~flows.stateful.EpochAware`."""
        self.counter.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        self.epoch_closed()
        return self.counter.snapshot()


class FigureCounter:
    """The journeys' and offers' day figures (:class:`~state.totals.Totals`)."""

    def __init__(self, totals: Totals) -> None:
        """Wrap the totals."""
        self.totals = totals

    def take(self, values: list[FigureDeltas]) -> list[RedisWrite]:
        """Add the deltas."""
        return self.totals.apply(values)

    def at_end(self) -> list[RedisWrite]:
        """Nothing more: every delta was written as it came."""
        return []

    def epoch_closed(self) -> None:
        """Nothing waits for an epoch here."""

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.totals.snapshot()


class MinuteCounter:
    """A per-minute series; its minutes close by the senders' watermark (see
    :class:`~flows.stateful.UpstreamProgress`).
    """

    def __init__(self, series: MinuteSeries, wait_for_epoch: bool) -> None:
        """Wrap a series."""
        self.series = series
        self._upstream = UpstreamProgress(wait_for_epoch=wait_for_epoch)

    def take(self, values: list[MinuteDeltas]) -> list[RedisWrite]:
        """Add the deltas, close what the watermark allows."""
        watermark = self._upstream.heard(max(v.watermark_ms for v in values))
        open_from = {v.sender: v.open_from_ms for v in values if v.sender}
        return self.series.apply([v.counts for v in values], watermark, open_from)

    def at_end(self) -> list[RedisWrite]:
        """Every delta has arrived: at the end of a bounded run every minute closes; on a
        requested stop only what the watermark allows (the run resumes later).
        """
        writes = self.series.apply([], self._upstream.at_end())
        if not stop_requested():
            writes.extend(self.series.close_all())
        return writes

    def epoch_closed(self) -> None:
        """The watermarks heard in the epoch are safe to act on."""
        self._upstream.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.series.snapshot()


class PipelineCounter:
    """The pipeline-health counters (:class:`~operators.aggregates.PipelineTotals`)."""

    def __init__(self, totals: PipelineTotals) -> None:
        """Wrap the counters."""
        self.totals = totals

    def take(self, values: list[dict[str, int]]) -> list[RedisWrite]:
        """Add the deltas."""
        return self.totals.apply(values)

    def at_end(self) -> list[RedisWrite]:
        """One last sample of the counters, as they end."""
        self.totals.epoch_closed()
        return self.totals.apply([], sample=True)

    def epoch_closed(self) -> None:
        """An epoch this step took part in has closed."""
        self.totals.epoch_closed()

    def snapshot(self) -> bytes:
        """Versioned msgpack bytes."""
        return self.totals.snapshot()
