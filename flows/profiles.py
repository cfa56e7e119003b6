"""The customer store as the journeys (segments) and the offers (profiles) read it: one reader
per process, so that a customer read by one is cached for the other, connecting on first use (in
the worker, not at flow build time) and waiting out the store's outages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from offers.engine import ProfileLookup
from operators.journeys import SegmentLookup
from state.customer_store import CustomerProfile, CustomerProfiles
from state.outage import Outage, redact, redis_unreachable
from state.settings import Settings

_readers: dict[tuple[str, str], CustomerProfiles] = {}
_lock = threading.Lock()


def customer_profiles(settings: Settings) -> CustomerProfiles:
    """This process's reader of the customer store of ``settings``."""
    key = (settings.redis_url, settings.redis_prefix)
    with _lock:
        reader = _readers.get(key)
        if reader is None:
            from sinks.redis_projection import redis_client

            outage = Outage(
                "Redis", redact(settings.redis_url), redis_unreachable, settings.outage_limit_s
            )
            reader = _readers[key] = CustomerProfiles(
                redis_client(settings.redis_url, settings.redis_options()),
                settings.redis_prefix,
                settings.customer_cache_size,
                outage=outage,
            )
        return reader


def lazy_segment_lookup(settings: Settings) -> SegmentLookup:
    """Segments of customers, for the journeys."""

    def lookup(customer_ids: Iterable[str]) -> dict[str, str]:
        return customer_profiles(settings).segments(customer_ids)

    return lookup


def lazy_profile_lookup(settings: Settings) -> ProfileLookup:
    """Profiles of customers, for the offers."""

    def lookup(customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
        return customer_profiles(settings).get_many(customer_ids)

    return lookup
