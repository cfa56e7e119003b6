"""Identity of an event (PRODUCT.md, "Identity"), decided per device in event-time order.

An event with a ``customer_id`` is that customer's. An anonymous event is decided once the
shard's watermark has passed it, so that every login at or before it has arrived:

1. the customer of the device's latest ``login`` at or before the event;
2. else, if the device's events from this one up to a later login have no gap over the session
   gap, that login's customer (the anonymous start of a journey belongs to whoever logs in);
3. else the device itself, once the device has been quiet for longer than the gap.

Events are handled as ``(event_ms, event_id)`` pairs so that equal times order by id.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import msgspec

DEVICE_PREFIX = "device:"


def device_identity(device_id: str) -> str:
    """The anonymous identity of a device (never equal to a customer id)."""
    return f"{DEVICE_PREFIX}{device_id}"


class DeviceEvent(msgspec.Struct, frozen=True, gc=False, array_like=True, order=True):
    """What identity resolution needs of one event on a device."""

    event_ms: int
    event_id: str
    customer_id: str | None
    is_login: bool


class Resolved(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An anonymous event whose identity is now decided."""

    event_id: str
    event_ms: int
    identity: str


class DeviceState(msgspec.Struct, gc=False):
    """Recoverable identity state of one device."""

    logins: list[tuple[int, str, str]] = []
    """(time, event_id, customer) of logins, sorted; older ones pruned once irrelevant."""
    times: list[tuple[int, str]] = []
    """(time, event_id) of the device's events since its oldest undecided event, sorted."""
    pending: list[tuple[int, str]] = []
    """Anonymous events not decided yet, sorted."""


class DeviceIdentities:
    """Decides the identity of a device's anonymous events as the watermark moves."""

    def __init__(self, device_id: str, gap_ms: int, state: DeviceState | None = None) -> None:
        """Resolver for one device with the given session gap."""
        self.device_id = device_id
        self.gap_ms = gap_ms
        self.state = state or DeviceState()

    def add(self, events: Iterable[DeviceEvent]) -> None:
        """Record events of this device (any order, duplicates already removed)."""
        state = self.state
        for event in events:
            key = (event.event_ms, event.event_id)
            if event.is_login and event.customer_id is not None:
                bisect.insort(state.logins, (event.event_ms, event.event_id, event.customer_id))
            bisect.insort(state.times, key)
            if event.customer_id is None:
                bisect.insort(state.pending, key)

    def known_customer(self, event_ms: int, event_id: str) -> str | None:
        """The customer of the latest login at or before this moment, as known now."""
        logins = self.state.logins
        index = bisect.bisect_right(logins, (event_ms, event_id, "\U0010ffff"))
        return logins[index - 1][2] if index else None

    def resolve(self, watermark_ms: int) -> list[Resolved]:
        """Decide every pending event that the watermark allows; return them in time order."""
        state = self.state
        decided: list[Resolved] = []
        keep: list[tuple[int, str]] = []
        for event_ms, event_id in state.pending:
            if event_ms > watermark_ms:
                keep.append((event_ms, event_id))
                continue
            identity = self._decide(event_ms, event_id, watermark_ms)
            if identity is None:
                keep.append((event_ms, event_id))
            else:
                decided.append(Resolved(event_id, event_ms, identity))
        state.pending = keep
        self._prune(watermark_ms)
        return decided

    def _decide(self, event_ms: int, event_id: str, watermark_ms: int) -> str | None:
        customer = self.known_customer(event_ms, event_id)
        if customer is not None:
            return customer
        # Follow the device's events forward while no gap exceeds the session gap.
        times = self.state.times
        logins = self.state.logins
        index = bisect.bisect_left(times, (event_ms, event_id))
        previous = event_ms
        next_login = bisect.bisect_right(logins, (event_ms, event_id, "\U0010ffff"))
        for later_ms, later_id in times[index:]:
            if later_ms - previous > self.gap_ms:
                return device_identity(self.device_id)
            previous = later_ms
            if next_login < len(logins) and (later_ms, later_id) == logins[next_login][:2]:
                return logins[next_login][2]
        # The chain ends at the device's last event: anonymous once the gap has surely passed.
        if watermark_ms - previous > self.gap_ms:
            return device_identity(self.device_id)
        return None

    def _prune(self, watermark_ms: int) -> None:
        state = self.state
        # A chain runs forward from its event: times are needed from the oldest undecided event,
        # or from the watermark, where the next on-time event may arrive.
        horizon = (watermark_ms, "")
        if state.pending and state.pending[0] < horizon:
            horizon = state.pending[0]
        cut = bisect.bisect_left(state.times, horizon)
        if cut:
            del state.times[:cut]
        # Logins: every one after the watermark, and the latest one at or before it.
        index = bisect.bisect_right(state.logins, (watermark_ms, "\U0010ffff", ""))
        if index > 1:
            del state.logins[: index - 1]

    @property
    def idle(self) -> bool:
        """Nothing undecided: the device's state is only its last login (or nothing)."""
        return not self.state.pending
