"""The simulated clock: when event ``k`` happens, and its time as the contract writes it.

Without the daily curve, event ``k`` happens at ``start + k / rate``; with it, at the moment the
bank's daily curve has given ``k`` of the run's events (a quiet night, a busy evening). Either way
the clock is a pure function of the configuration: no wall clock is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch, from which event times are counted in milliseconds."""

MINUTE_MS: Final = 60_000
"""A minute in milliseconds (simulated times are milliseconds since the epoch)."""
_HOUR_MS: Final = 60 * MINUTE_MS
_HOURS_A_DAY: Final = 24
_MS_A_SECOND: Final = 1000

DAILY_CURVE: Final = (
    0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.45, 0.85, 1.20, 1.30, 1.30, 1.35,
    1.50, 1.40, 1.25, 1.20, 1.25, 1.45, 1.75, 2.00, 1.90, 1.50, 0.90, 0.40,
)  # fmt: skip
"""Relative traffic in each UTC hour of the day (mean 1): a quiet night, a morning rise, a lunch
peak and the evening's busiest hours, as retail banking apps see it."""


def epoch_ms(moment: datetime) -> int:
    """A timezone-aware moment as milliseconds since the Unix epoch (sub-millisecond part dropped).

    Args:
        moment: a timezone-aware datetime.

    Returns:
        Whole milliseconds since 1970-01-01T00:00:00Z.
    """
    return (moment - EPOCH) // timedelta(milliseconds=1)


def curve_times(start_ms: int, duration_ms: int, count: int) -> Callable[[int], int]:
    """Event ``k``'s time (ms) when ``count`` events follow :data:`DAILY_CURVE` over the run.

    The curve's cumulative is piecewise linear over the UTC hours the run touches; event ``k``
    falls where it reaches ``k / count`` of the whole. Calls must come with rising ``k``.

    Args:
        start_ms: the run's start, in ms since the epoch.
        duration_ms: the run's length in ms.
        count: the number of events the run holds.

    Returns:
        A function from the event number ``k`` (rising from call to call) to its time in ms.
    """
    bounds: list[tuple[int, int, float, float]] = []  # (from ms, to ms, weight, cumulative)
    at, total = start_ms, 0.0
    end = start_ms + duration_ms
    while at < end:
        upto = min(end, (at // _HOUR_MS + 1) * _HOUR_MS)
        weight = DAILY_CURVE[(at // _HOUR_MS) % _HOURS_A_DAY]
        bounds.append((at, upto, weight, total))
        total += weight * (upto - at)
        at = upto
    per_event = total / count if count else 0.0
    segment = 0

    def time_of(k: int) -> int:
        nonlocal segment
        target = k * per_event
        while segment + 1 < len(bounds) and bounds[segment + 1][3] <= target:
            segment += 1
        begin, _, weight, before = bounds[segment]
        return begin + int((target - before) / weight)

    return time_of


class Timestamps:
    """RFC 3339 UTC timestamps with milliseconds, formatting each second only once."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        """Start with no second formatted yet."""
        self._second = -1
        self._prefix = b""

    def format(self, ms: int) -> bytes:
        """The event time ``ms`` (since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

        Args:
            ms: milliseconds since the epoch.

        Returns:
            The timestamp as ASCII bytes, without quotes.
        """
        second, millisecond = divmod(ms, _MS_A_SECOND)
        if second != self._second:
            self._second = second
            moment = EPOCH + timedelta(seconds=second)
            self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.").encode()
        return b"%s%03dZ" % (self._prefix, millisecond)


def parse_ms(event_time: str) -> int:
    """An ISO 8601 event time as milliseconds since the epoch.

    Args:
        event_time: a timestamp as the contract writes it.

    Returns:
        Whole milliseconds since the epoch.
    """
    return epoch_ms(datetime.fromisoformat(event_time))
