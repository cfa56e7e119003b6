"""Stateful steps, with their snapshots skipped when the job has no recovery store.

Bytewax snapshots every stateful step's touched keys at each epoch's end whether or not a
recovery store will keep them (measured: 6-8% of the job's time without a store). A job run
without one (a back-fill, the bench, a quick demo) gets the same steps, minus that work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

V = TypeVar("V")
W = TypeVar("W")

NO_SNAPSHOT = b""
"""What a step without a recovery store hands Bytewax as its snapshot; never restored."""


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
        """Nothing: there is no recovery store to write it to."""
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
