"""Event-time progress per input partition, and the low watermark it gives.

Reading a backlog, Kafka partitions advance at their own pace: one may be hours of event time
ahead of another. "Newest event time seen" would then make the slower partitions' events late.
The low watermark is the newest time seen on the *slowest* active partition instead; a
partition that has fallen behind the fastest by more than the idle bound counts as idle (a
partition with no traffic must not hold everything back forever).
"""

from __future__ import annotations

NEVER = -(2**62)


class PartitionClock:
    """Newest event time per input partition."""

    def __init__(
        self,
        idle_ms: int,
        newest: dict[str, int] | None = None,
        expected: tuple[str, ...] = (),
    ) -> None:
        """Create the clock.

        Args:
            idle_ms: the idle bound.
            newest: a snapshot of :attr:`newest`.
            expected: every input partition, when known: the watermark stays at its start
                until each has been seen.
        """
        self._idle_ms = idle_ms
        self.newest: dict[str, int] = dict(newest or {})
        self._waiting = set(expected) - set(self.newest)

    def observe(self, position: str, event_ms: int) -> None:
        """An event of ``position`` at ``event_ms``."""
        if event_ms > self.newest.get(position, NEVER):
            self.newest[position] = event_ms
        if self._waiting:
            self._waiting.discard(position)

    @property
    def max_ms(self) -> int:
        """The newest event time over all partitions."""
        return max(self.newest.values(), default=NEVER)

    def low_ms(self) -> int:
        """The newest time every active partition has reached."""
        if not self.newest or self._waiting:
            return NEVER
        top = max(self.newest.values())
        return min(t for t in self.newest.values() if t >= top - self._idle_ms)
