"""What an offers shard is given: its configuration, and where it reads customers' profiles."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from state.customer_store import CustomerProfile

ProfileLookup = Callable[[Iterable[str]], Mapping[str, CustomerProfile]]
"""Customer ids → their profiles (from the core-banking extract), read in batches."""


class OffersConfig(msgspec.Struct, frozen=True):
    """What the engine needs to know; none of it is state."""

    prefix: str = "cs"
    timezone: str = "Europe/Warsaw"
    quiet_hours: tuple[int, int] | None = (21 * 60, 8 * 60)
    """(start, end) in minutes of the bank's day; offers due inside are held until ``end``."""
    max_offers_per_event: int = 1
    daily_cap: int = 3
    """Offers per customer per calendar day over all campaigns."""
    holdout_share: float = 0.0
    history_events: int = 20
    history_ms: int = 6 * 3600_000
    session_gap_ms: int = 30 * 60_000
    max_trigger_age_ms: int = 3600_000
    """Against the wall clock; 0 turns it off (back-tests)."""
    rule_timeout_ms: int = 100
    release_grace_ms: int = 2000
