"""Event-time progress per input partition, and the low watermark it gives.

Reading a backlog, Kafka partitions advance at their own pace: one poll can span hours of event
time, so one partition may be far ahead of another. The low watermark is therefore the newest
event time of the *slowest* partition that still has data to give (Flink's rule), never the
newest time seen anywhere.

A partition stops holding the watermark back only when its source says it is idle: read to its
end and quiet for ``partition_idle_s`` of wall clock (a live topic whose producer went silent),
or finished (a bounded read at its end). Being behind another partition never makes it idle. A
partition that delivers events again holds the watermark back again.

Every shard hears of every input batch's progress and idleness (see
:class:`~operators.shard_state.ShardInput`), so all shards of a job share one view of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from state.moments import NEVER


class PartitionClock:
    """Newest event time per input partition, and which partitions are idle."""

    def __init__(
        self,
        newest: dict[str, int] | None = None,
        expected: tuple[str, ...] = (),
        idle: Iterable[str] = (),
    ) -> None:
        """Create the clock.

        Args:
            newest: a snapshot of :attr:`newest`.
            expected: every input partition, when known: the watermark stays at its start
                until each has given an event or been reported idle.
            idle: a snapshot of :attr:`idle`.
        """
        self.newest: dict[str, int] = dict(newest or {})
        self.idle: set[str] = set(idle)
        self._waiting = set(expected) - set(self.newest) - self.idle

    def observe(self, position: str, event_ms: int) -> None:
        """An event of ``position`` at ``event_ms``: the partition is active."""
        if event_ms > self.newest.get(position, NEVER):
            self.newest[position] = event_ms
        if self.idle:
            self.idle.discard(position)
        if self._waiting:
            self._waiting.discard(position)

    def mark_idle(self, position: str) -> None:
        """The source reports ``position`` idle (caught up and quiet, or finished)."""
        self.idle.add(position)
        if self._waiting:
            self._waiting.discard(position)

    @property
    def max_ms(self) -> int:
        """The newest event time over all partitions."""
        return max(self.newest.values(), default=NEVER)

    def low_ms(self) -> int:
        """The newest time every partition with data still to give has reached.

        When every partition is idle, everything there was to read has been read: the newest
        time seen anywhere.
        """
        if self._waiting or not self.newest:
            return NEVER
        idle = self.idle
        if not idle:
            return min(self.newest.values())
        active = [t for position, t in self.newest.items() if position not in idle]
        return min(active) if active else max(self.newest.values())
