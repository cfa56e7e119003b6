"""When pending offers are due: by event time, or by the wall clock while the input is quiet.

Two heaps of (due time, customer id, offer id). An offer released by one of them stays in the
other until it reaches the top, where it is skipped: checking the customer's pending offers is
cheaper than removing it from the middle of a heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from offers.records import Pending

Due = tuple[int, str, str]
"""(due time ms, customer id, offer id): ordered by time first, as the heaps need."""


class ReleaseSchedule:
    """The pending offers of one shard, by send time and by wall-clock due time."""

    def __init__(self) -> None:
        """An empty schedule."""
        self._by_send_at: list[Due] = []
        self._by_wall: list[Due] = []

    def add(self, customer_id: str, pending: Pending) -> None:
        """Schedule a pending offer of this customer."""
        heapq.heappush(self._by_send_at, (pending.send_at_ms, customer_id, pending.offer_id))
        heapq.heappush(self._by_wall, (pending.wall_due_ms, customer_id, pending.offer_id))

    def take_due(self, send_limit_ms: int, wall_limit_ms: int) -> dict[str, set[str]]:
        """Remove and return the offers due: sent at or before ``send_limit_ms`` (event time),
        or due by ``wall_limit_ms`` (wall clock); customer id → offer ids.
        """
        due: dict[str, set[str]] = {}
        for heap, limit in ((self._by_send_at, send_limit_ms), (self._by_wall, wall_limit_ms)):
            while heap and heap[0][0] <= limit:
                _, customer_id, offer = heapq.heappop(heap)
                due.setdefault(customer_id, set()).add(offer)
        return due

    def next_wall_due_ms(self, is_pending: Callable[[str, str], bool]) -> int | None:
        """The earliest wall-clock due time of an offer still pending, None if there is none.

        Args:
            is_pending: (customer id, offer id) → whether the offer is still pending.
        """
        by_wall = self._by_wall
        while by_wall and not is_pending(by_wall[0][1], by_wall[0][2]):
            heapq.heappop(by_wall)
        return by_wall[0][0] if by_wall else None
