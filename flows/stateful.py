"""Stateful steps, with their snapshots skipped when the job has no recovery store.

Bytewax snapshots every stateful step's touched keys at each epoch's end whether or not a
recovery store will keep them (measured: 6-8% of the job's time without a store). A job run
without one (a back-fill, the bench, a quick demo) gets the same steps, minus that work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from state.moments import NEVER

V = TypeVar("V")
W = TypeVar("W")

NO_SNAPSHOT = b""
"""What a step without a recovery store hands Bytewax as its snapshot; never restored."""


@runtime_checkable
class EpochAware(Protocol):
    """A logic that wants to know when an epoch it took part in has closed.

    Bytewax has no frontier hook for Python; it calls ``snapshot()`` on every key touched in an
    epoch once that epoch is closed at the step, i.e. once every item of the epoch, from every
    worker, has reached it. That call is the only signal of it, so a logic that needs it
    implements this and calls :meth:`epoch_closed` at the start of its own ``snapshot()``;
    :class:`NoSnapshots` calls it in place of the snapshot it skips.
    """

    def epoch_closed(self) -> None:
        """Every item of the epoch just closed has reached this step."""


class NoSnapshots(StatefulBatchLogic[V, W, bytes]):
    """A step's logic with :meth:`snapshot` skipped; everything else is the logic's own."""

    def __init__(self, inner: StatefulBatchLogic[V, W, bytes]) -> None:
        """Wrap a logic."""
        self.inner = inner

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        """The logic's own."""
        return self.inner.on_batch(values)

    def on_notify(self) -> tuple[Iterable[W], bool]:
        """The logic's own."""
        return self.inner.on_notify()

    def on_eof(self) -> tuple[Iterable[W], bool]:
        """The logic's own."""
        return self.inner.on_eof()

    def notify_at(self) -> datetime | None:
        """The logic's own."""
        return self.inner.notify_at()

    def snapshot(self) -> bytes:
        """Nothing: there is no recovery store to write it to (the epoch still closes)."""
        if isinstance(self.inner, EpochAware):
            self.inner.epoch_closed()
        return NO_SNAPSHOT


def stateful_batch(
    step_id: str,
    up: Stream[tuple[str, V]],
    builder: Callable[[bytes | None], StatefulBatchLogic[V, W, bytes]],
    *,
    snapshots: bool,
) -> Stream[tuple[str, W]]:
    """:func:`bytewax.operators.stateful_batch`, snapshotting only when ``snapshots``."""
    if snapshots:
        return op.stateful_batch(step_id, up, builder)

    def build(resume: Any) -> StatefulBatchLogic[V, W, bytes]:
        return NoSnapshots(builder(resume))

    return op.stateful_batch(step_id, up, build)


class UpstreamProgress:
    """The upstream watermark a keyed step may act on (close sessions, release offers).

    Each sending shard tags its items with its own watermark. With one worker, every sending
    shard has taken in the same input before any of its output is read here, so the newest tag
    heard is safe to act on at once. With several workers (threads or processes), a shard on
    one worker may run ahead of one on another whose items, older in event time, are still on
    their way: a tag is safe only once the epoch it arrived in has closed at this step (every
    item of that epoch from every worker has arrived, see :class:`EpochAware`), and every later
    item was sent by a shard that had already taken in that epoch's input.
    """

    def __init__(self, *, wait_for_epoch: bool) -> None:
        """Create the tracker; ``wait_for_epoch`` when the job runs on several workers."""
        self._wait = wait_for_epoch
        self._heard = NEVER
        self._safe = NEVER

    def heard(self, watermark_ms: int) -> int:
        """Note a tag; return the watermark safe to act on now."""
        if not self._wait:
            self._safe = max(self._safe, watermark_ms)
        elif watermark_ms > self._heard:
            self._heard = watermark_ms
        return self._safe

    def epoch_closed(self) -> None:
        """Every tag heard so far is safe now."""
        if self._heard > self._safe:
            self._safe = self._heard

    def at_end(self) -> int:
        """The input ended and every item has arrived: everything heard is safe; return it."""
        self.epoch_closed()
        return self._safe
