"""The event contract v1 (PRODUCT.md) as msgspec types.

One JSON object per message. msgspec enforces the types, lengths and the allowed values of
``event_type`` and ``channel``; the rules that span fields (an identity is required, app fields
are required for the app channels ``mobile`` and ``web``) are checked in
:func:`cross_field_problem`. ATMs, branches and the core banking system send no app fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

import msgspec

EventType = Literal[
    "screen_view",
    "click",
    "form_start",
    "form_submit",
    "login",
    "logout",
    "conversion",
    "error",
    "transaction",
]
Channel = Literal["mobile", "web", "atm", "branch", "core"]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
CHANNELS: tuple[str, ...] = get_args(Channel)
APP_FIELDS: tuple[str, ...] = ("app", "app_version", "os", "os_version")
APP_CHANNELS: frozenset[str] = frozenset({"mobile", "web"})
"""The channels whose events come from an app, and must say which app, version and OS."""
SESSION_CHANNELS: frozenset[str] = frozenset({"mobile", "web"})

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
EventTime = Annotated[datetime, msgspec.Meta(tz=True)]
PropertyValue = str | int | float | bool
# A non-empty identifier: an empty string is as good as a missing one and would merge unrelated
# customers into one identity.
Identifier = Annotated[str, msgspec.Meta(min_length=1)]


class Event(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One customer or business event, as produced by the apps and the core banking system."""

    event_id: EventId
    event_time: EventTime
    event_type: EventType
    channel: Channel
    customer_id: Identifier | None = None
    device_id: Identifier | None = None
    app: str | None = None
    app_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    screen: str | None = None
    element: str | None = None
    form: str | None = None
    properties: dict[str, PropertyValue] = {}

    @property
    def identity_key(self) -> str:
        """The customer id, or the device id for an anonymous event (the Kafka message key)."""
        return self.customer_id if self.customer_id is not None else self.device_id or ""


def cross_field_problem(event: Event) -> str | None:
    """Return a readable reason when ``event`` breaks a rule spanning several fields, else None."""
    if event.customer_id is None and event.device_id is None:
        return "customer_id and device_id are both missing: one of them is required"
    if event.channel in APP_CHANNELS:
        missing = [name for name in APP_FIELDS if getattr(event, name) is None]
        if missing:
            return f"{', '.join(missing)} required for channel {event.channel!r}"
    return None
