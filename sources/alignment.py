"""Watermark alignment while catching up (Flink's): an input partition that has read too far
ahead of the slowest one pauses until the others catch up.

Reading a backlog, partitions run at different speeds, and everything the job keeps for the
slow ones (open sessions, undecided identities, remembered event ids) grows with the distance
between the fastest and the slowest. Bounding that distance bounds the state.

This is flow control only, never correctness: the low watermark is always the slowest
partition's, paused or not. One object per process: the decode step tells it how far each
partition has been read, the shards how far the low watermark has got (their view covers every
process's partitions), and this process's source partitions ask it whether to pause.
"""

from __future__ import annotations

import threading


class ReadAlignment:
    """How far each input partition read by this process has got, against the low watermark."""

    def __init__(self, max_drift_ms: int) -> None:
        """Create the alignment.

        Args:
            max_drift_ms: how far (event time) a partition may read ahead of the low watermark
                before it pauses; 0 turns alignment off.
        """
        self.max_drift_ms = max_drift_ms
        self._newest: dict[str, int] = {}
        self._low_ms: int | None = None
        self._lock = threading.Lock()

    def read(self, progress: dict[str, int]) -> None:
        """Partitions were read up to these event times (``<source>#<partition>`` → ms)."""
        with self._lock:
            newest = self._newest
            for position, ms in progress.items():
                if ms > newest.get(position, ms - 1):
                    newest[position] = ms

    def progressed(self, low_ms: int) -> None:
        """A shard's low watermark (before the allowed lateness) reached ``low_ms``."""
        if self._low_ms is None or low_ms > self._low_ms:
            self._low_ms = low_ms

    def ahead(self, position: str) -> bool:
        """Whether ``position`` should pause: read more than the drift past the low watermark.

        Never before the watermark is known (every partition has reported), so a partition
        not yet read is never waited for by a paused one.
        """
        low = self._low_ms
        if not self.max_drift_ms or low is None:
            return False
        newest = self._newest.get(position)
        return newest is not None and newest > low + self.max_drift_ms
