"""Customer segments for the journeys, read from the customer store in Redis."""

from __future__ import annotations

from collections.abc import Iterable

from flows.settings import Settings
from operators.journeys import SegmentLookup


def lazy_segment_lookup(settings: Settings) -> SegmentLookup:
    """A segment lookup that connects on first use (in the worker, not at flow build time)."""
    reader: list[object] = []

    def lookup(customer_ids: Iterable[str]) -> dict[str, str]:
        from state.customer_store import CustomerProfiles

        if not reader:
            import redis

            client = redis.Redis.from_url(settings.redis_url)
            reader.append(CustomerProfiles(client, settings.redis_prefix))
        profiles = reader[0]
        assert isinstance(profiles, CustomerProfiles)
        return profiles.segments(customer_ids)

    return lookup
