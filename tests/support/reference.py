"""An independent, deliberately plain reading of PRODUCT.md's contract and definitions.

It shares no code with the job (only the standard library), so that the job's figures are
checked against the definitions, not against themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TYPES = {"screen_view", "click", "form_start", "form_submit", "login", "logout", "conversion",
         "error", "transaction"}  # fmt: skip
CHANNELS = {"mobile", "web", "atm", "branch", "core"}
LIMIT = 16_384


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time with an offset, else None."""
    if not isinstance(text, str) or "T" not in text.upper():
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def is_valid(value: bytes) -> bool:
    """Whether one message passes the event contract v1."""
    if len(value) > LIMIT:
        return False
    try:
        # Strict UTF-8 (json.loads of bytes would let an encoded surrogate through).
        event = json.loads(value.decode("utf-8"))
    except ValueError:
        return False
    if not isinstance(event, dict):
        return False
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
        return False
    if parse_time(event.get("event_time")) is None:
        return False
    event_type, channel = event.get("event_type"), event.get("channel")
    if not isinstance(event_type, str) or not isinstance(channel, str):
        return False
    if event_type not in TYPES or channel not in CHANNELS:
        return False
    customer, device = event.get("customer_id"), event.get("device_id")
    if customer is None and device is None:
        return False
    for name in ("customer_id", "device_id"):
        identifier = event.get(name)
        if identifier is not None and (not isinstance(identifier, str) or identifier == ""):
            return False
    for name in ("app", "app_version", "os", "os_version", "screen", "element", "form"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return False
    if event["channel"] in ("mobile", "web") and any(
        event.get(name) is None for name in ("app", "app_version", "os", "os_version")
    ):
        return False
    props = event.get("properties", {})
    if not isinstance(props, dict):
        return False
    return all(isinstance(v, str | int | float | bool) for v in props.values())


@dataclass
class Expected:
    """What the job must report for one input."""

    valid_unique: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    rejected: list[bytes] = field(default_factory=list)

    def events_per_minute(self) -> Counter[tuple[str, str]]:
        """(UTC minute as YYYY-MM-DDTHH:MM, event_type) → count."""
        counts: Counter[tuple[str, str]] = Counter()
        for event in self.valid_unique.values():
            moment = parse_time(event["event_time"])
            assert moment is not None
            counts[(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"), event["event_type"])] += 1
        return counts


def expected_from(messages: list[bytes]) -> Expected:
    """Apply the contract and first-arrival dedupe to messages in input order."""
    expected = Expected()
    for value in messages:
        if not is_valid(value):
            expected.rejected.append(value)
            continue
        event = json.loads(value)
        if event["event_id"] in expected.valid_unique:
            expected.duplicates += 1
        else:
            expected.valid_unique[event["event_id"]] = event
    return expected
