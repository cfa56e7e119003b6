"""The identity an archived event may carry: PRODUCT.md's "Identity" as far as it can be known when
the event is processed (its customer id, else the customer of the latest login on its device at or
before it, else the device), computed from the input alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.reference import parse_time


@dataclass(frozen=True)
class IngestIdentity:
    """What an event's identity can be in the archive."""

    read_before: str
    """From the logins that come before the event in the input."""
    every_login: str
    """From every login of the input (what a job that read the logins first would know)."""
    possible: frozenset[str]
    """Anything a job could know: the device, or the customer of any login at or before it."""


def ingest_identities(valid_unique: dict[str, dict[str, Any]]) -> dict[str, IngestIdentity]:
    """event_id → its possible identities, for the valid unique events in input order."""
    logins: dict[str, list[tuple[tuple[int, str], str, int]]] = {}
    for position, event in enumerate(valid_unique.values()):
        if event["event_type"] == "login" and event.get("customer_id") and event.get("device_id"):
            key = (_ms(event), event["event_id"])
            logins.setdefault(event["device_id"], []).append((key, event["customer_id"], position))
    result: dict[str, IngestIdentity] = {}
    for position, (event_id, event) in enumerate(valid_unique.items()):
        customer = event.get("customer_id")
        if customer:
            result[event_id] = IngestIdentity(customer, customer, frozenset([customer]))
            continue
        device = f"device:{event['device_id']}"
        at = (_ms(event), event_id)
        earlier = [login for login in logins.get(event["device_id"], []) if login[0] <= at]
        read = [login for login in earlier if login[2] < position]
        result[event_id] = IngestIdentity(
            max(read)[1] if read else device,
            max(earlier)[1] if earlier else device,
            frozenset([device, *(login[1] for login in earlier)]),
        )
    return result


def _ms(event: dict[str, Any]) -> int:
    moment = parse_time(event["event_time"])
    assert moment is not None
    return round(moment.timestamp() * 1000)
