"""The simulator's messages as they go to Kafka: a key and the event as JSON bytes.

Event bodies are written straight to bytes, in the contract's member order: ``event_id`` and
``event_time`` first (written per event by the traffic), then the event type, the context of the
app, core system, ATM or branch that reports it, and the screen, element, form and properties.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from state.contract import EVENT_TYPES

if TYPE_CHECKING:
    from sources.simulator.config import SimulationConfig
    from sources.simulator.population import SimulatedDevice

MessageKind = Literal["valid", "late", "duplicate", "malformed"]
"""What a simulated message is: a valid event in event-time order, a valid event held back and
emitted late, a byte-identical copy of an earlier message, or a message that breaks the contract."""

Properties = dict[str, str | int | float | bool]
"""An event's ``properties``: flat, scalar values only."""

ENVELOPE: Final = b'{"event_id":"%s%d","event_time":"%s",%s'
"""An event's bytes from its id prefix, number, time and body (see :class:`EventBodies`)."""

_EVENT_TYPE_FIELD: Final = {name: f'"event_type":"{name}",'.encode() for name in EVENT_TYPES}
_RUN_TAG_BYTES: Final = 3

encode = msgspec.json.Encoder().encode
"""JSON bytes of a value, members in insertion order."""


class SimulatedMessage(msgspec.Struct, frozen=True, gc=False):
    """One message to send: the Kafka key (customer id, else device id) and the JSON bytes.

    ``kind`` says what the simulator made it (for tests and the run summary); it is not sent.
    """

    key: bytes | None
    value: bytes
    kind: MessageKind = "valid"


class EventBodies:
    """Writes event bodies: every member after ``event_time``, closing brace included."""

    __slots__ = ("_tails",)

    def __init__(self) -> None:
        """Start with no tails remembered; those without properties are written only once."""
        self._tails: dict[tuple[str | None, str | None, str | None], bytes] = {}

    def event(
        self,
        event_type: str,
        context: bytes,
        screen: str | None = None,
        element: str | None = None,
        form: str | None = None,
        *,
        properties: Properties | None = None,
    ) -> bytes:
        """The body of one event.

        Args:
            event_type: one of the contract's event types.
            context: who reports it, as JSON members (see :func:`app_context`).
            screen: the screen it happens on, if any.
            element: the element clicked, if any.
            form: the form started or submitted, if any.
            properties: the event's properties, if any.

        Returns:
            The members from ``event_type`` on, and the closing brace.
        """
        if properties is None:
            where = (screen, element, form)
            tail = self._tails.get(where)
            if tail is None:
                tail = self._tails[where] = _tail(screen, element, form, None)
        else:
            tail = _tail(screen, element, form, properties)
        return _EVENT_TYPE_FIELD[event_type] + context + tail


def _tail(
    screen: str | None,
    element: str | None,
    form: str | None,
    properties: Properties | None,
) -> bytes:
    members: dict[str, object] = {}
    if screen is not None:
        members["screen"] = screen
    if element is not None:
        members["element"] = element
    if form is not None:
        members["form"] = form
    if properties:
        members["properties"] = properties
    if not members:
        return b"}"
    return b"," + encode(members)[1:]


def app_context(device: SimulatedDevice, customer_id: str | None) -> bytes:
    """The fields an app puts on every event, as JSON members (no braces).

    Args:
        device: the device the app runs on.
        customer_id: the customer logged in, None before the login.

    Returns:
        The channel, customer, device, app and OS members.
    """
    fields = {
        "channel": device.channel,
        "customer_id": customer_id,
        "device_id": device.device_id,
        "app": device.app,
        "app_version": device.app_version,
        "os": device.os,
        "os_version": device.os_version,
    }
    return encode(fields)[1:-1]


def core_context(customer_id: str) -> bytes:
    """The fields the core banking system puts on an event, as JSON members (no braces).

    Args:
        customer_id: the customer the event is about.

    Returns:
        The ``core`` channel and the customer id.
    """
    return b'"channel":"core","customer_id":' + encode(customer_id)


def money(amount: float) -> float:
    """An amount as the bank books it: rounded to the cent.

    Args:
        amount: the amount drawn.

    Returns:
        The amount to two decimals.
    """
    return round(amount, 2)


def event_id_prefix(config: SimulationConfig) -> bytes:
    """``e-<seed>-<run>-``: ``run`` tells apart runs of one seed with a different start, size or
    rate, so that their events never share an id (the job would drop them as duplicates).

    Args:
        config: the simulation.

    Returns:
        The prefix every event id of the run starts with; the event number follows it.
    """
    run = (
        f"{config.start_ms}|{config.customers}|{float(config.rate)!r}|{float(config.duration_s)!r}"
    ) + ("|daily" if config.daily_curve else "")
    tag = hashlib.blake2b(run.encode(), digest_size=_RUN_TAG_BYTES).hexdigest()
    return f"e-{config.seed}-{tag}-".encode()
