"""Small builders of events and arrivals for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from operators.sessions import SessionEvent
from state.contract import Event
from state.records import Arrival, RawMessage

BASE = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


def event_json(
    event_id: str,
    seconds: float,
    event_type: str = "click",
    customer_id: str | None = "C1",
    device_id: str | None = "D1",
    **extra: Any,
) -> bytes:
    """A valid web event ``seconds`` after 2026-01-15T08:00Z, as JSON bytes."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "event_time": (BASE + timedelta(seconds=seconds)).isoformat(),
        "event_type": event_type,
        "channel": "web",
        "customer_id": customer_id,
        "device_id": device_id,
        "app": "web-banking",
        "app_version": "3.1",
        "os": "Windows",
        "os_version": "11",
        "screen": "dashboard",
    }
    body.update(extra)
    return json.dumps(body).encode()


def raw(offset: int, value: bytes, source: str = "bank.events", partition: int = 0) -> RawMessage:
    """A raw message at ``offset``."""
    return RawMessage(source, partition, offset, value, b"C1")


def arrival(
    event_id: str,
    seconds: float,
    offset: int = 0,
    event_type: str = "click",
    partition: int = 0,
    *,
    customer_id: str | None = "C1",
    device_id: str | None = "D1",
) -> Arrival:
    """An accepted event ``seconds`` after the base time."""
    import msgspec

    body = event_json(event_id, seconds, event_type, customer_id, device_id)
    event = msgspec.json.decode(body, type=Event)
    return Arrival(
        event, int(event.event_time.timestamp() * 1000), "bank.events", partition, offset, 0
    )


JourneyItems = list[tuple[str, SessionEvent]]


def journey_batch(items: JourneyItems) -> bytes:
    """``(identity, event)`` pairs as the identity shards' native core sends them."""
    return msgspec.msgpack.encode(items)


def journey_items(batch: bytes) -> JourneyItems:
    """The ``(identity, event)`` pairs of a journeys batch."""
    return msgspec.msgpack.decode(batch, type=JourneyItems)
