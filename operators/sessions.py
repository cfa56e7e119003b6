"""The journeys' event (PRODUCT.md, "Sessions"): what the identity shards send a journeys shard
for each on-time event, and what its open sessions hold.

The sessions themselves (closing, the figures) run in the native core
(``native/src/journeys.rs``); this struct describes the wire layout it reads and writes (each
event a msgpack array in this field order), for migrations and tests.
"""

from __future__ import annotations

import msgspec


class SessionEvent(msgspec.Struct, frozen=True, gc=False, array_like=True, order=True):
    """What the journeys keep of one event (ordered by time, then id, which are unique)."""

    event_ms: int
    event_id: str
    event_type: str
    channel: str = "web"
    device_id: str | None = None
    customer_id: str | None = None
    """As sent: None for an anonymous event, whatever identity it was given."""
    app: str | None = None
    app_version: str | None = None
    os: str | None = None
    screen: str | None = None
    element: str | None = None
    form: str | None = None
    error_code: str | None = None
