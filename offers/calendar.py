"""The bank's calendar: its days and its quiet hours, both in the bank's time zone.

Caps count offers per calendar day of the bank (midnight in Warsaw, not in UTC), and an offer
due inside the quiet hours (by default 21:00 to 08:00) is held until they end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000
DAY_MS = 86_400_000


class BankCalendar:
    """The bank's days and quiet hours."""

    def __init__(self, timezone: str, quiet_hours: tuple[int, int] | None) -> None:
        """Calendar of the time zone ``timezone`` (IANA name).

        Args:
            timezone: the bank's time zone, e.g. ``Europe/Warsaw``.
            quiet_hours: (start, end) in minutes of the bank's day, or None for none.
        """
        self._zone = ZoneInfo(timezone)
        self._quiet_hours = quiet_hours

    def local_day(self, ms: int) -> date:
        """The bank's calendar day at ``ms``."""
        return datetime.fromtimestamp(ms / 1000, self._zone).date()

    def send_time(self, ms: int) -> tuple[int, bool]:
        """``ms`` moved out of the quiet hours, and whether it moved."""
        quiet = self._quiet_hours
        if quiet is None:
            return ms, False
        local = datetime.fromtimestamp(ms / 1000, self._zone)
        minute = local.hour * 60 + local.minute
        start, end = quiet
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return ms, False
        day = local.date() if minute < end else local.date() + timedelta(days=1)
        opens = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=self._zone)
        return int(opens.astimezone(UTC).timestamp() * 1000), True
