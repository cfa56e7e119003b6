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
import heapq
from collections.abc import Iterable

import msgspec

from state.archive_layout import DEVICE_PREFIX


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
        self.last_seen_ms = -(2**62)
        """Newest event time of the device (for freeing idle devices)."""

    def add(self, events: Iterable[DeviceEvent]) -> None:
        """Record events of this device (any order, duplicates already removed)."""
        for event in events:
            self.record(event.event_ms, event.event_id, event.customer_id, event.is_login)

    def record(self, event_ms: int, event_id: str, customer_id: str | None, is_login: bool) -> None:
        """Record one event of this device."""
        state = self.state
        key = (event_ms, event_id)
        logins = state.logins
        if is_login and customer_id is not None:
            bisect.insort(logins, (event_ms, event_id, customer_id))
        elif self.after_login(event_ms, event_id, customer_id, is_login):
            return
        times = state.times
        if not times or key > times[-1]:
            times.append(key)
        else:
            bisect.insort(times, key)
        if customer_id is None:
            bisect.insort(state.pending, key)

    def after_login(
        self, event_ms: int, event_id: str, customer_id: str | None, is_login: bool
    ) -> bool:
        """A logged-in event, not a login, after one of the device's logins.

        Such an event is never on a chain: an anonymous event before that login stops at it (or
        at an earlier one), and one after it is that login's customer's. Nothing of it needs
        keeping for stitching.
        """
        if customer_id is None or is_login:
            return False
        logins = self.state.logins
        if not logins:
            return False
        first = logins[0]
        return first[0] < event_ms or (first[0] == event_ms and first[1] <= event_id)

    def known_customer(self, event_ms: int, event_id: str) -> str | None:
        """The customer of the latest login at or before this moment, as known now."""
        logins = self.state.logins
        index = bisect.bisect_right(logins, (event_ms, event_id, "\U0010ffff"))
        return logins[index - 1][2] if index else None

    def resolve(self, watermark_ms: int) -> list[Resolved]:
        """Decide every pending event that the watermark allows; return them in time order."""
        state = self.state
        pending = state.pending
        # Pending is sorted: only the events up to the watermark can be decided.
        cut = bisect.bisect_right(pending, (watermark_ms, "\U0010ffff"))
        if cut == 0:
            return []
        decided: list[Resolved] = []
        keep: list[tuple[int, str]] = []
        for event_ms, event_id in pending[:cut]:
            identity = self._decide(event_ms, event_id, watermark_ms)
            if identity is None:
                keep.append((event_ms, event_id))
            else:
                decided.append(Resolved(event_id, event_ms, identity))
        if decided:
            keep.extend(pending[cut:])
            state.pending = keep
            self.prune(watermark_ms)
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

    def prune(self, watermark_ms: int) -> None:
        """Drop event times and logins that no decision can need any more."""
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

    def next_check_ms(self, watermark_ms: int) -> int:
        """When :meth:`resolve` may next decide something without a new event on the device."""
        state = self.state
        if not state.pending:
            return 2**62
        oldest = state.pending[0][0]
        if oldest > watermark_ms:
            return oldest
        # Undecided at the watermark: waiting for a login, or for the quiet gap to pass.
        return state.times[-1][0] + self.gap_ms + 1

    @property
    def idle(self) -> bool:
        """Nothing undecided: the device's state is only its last login (or nothing)."""
        return not self.state.pending


class ShardIdentitiesSnapshot(msgspec.Struct, frozen=True):
    """Recoverable identity state of a shard's devices."""

    devices: dict[str, DeviceState]
    last_seen: dict[str, int]


class ShardIdentities:
    """The identity resolvers of every device of a shard, freed when a device goes idle."""

    def __init__(
        self, gap_ms: int, idle_ms: int, snapshot: ShardIdentitiesSnapshot | None = None
    ) -> None:
        """Create the resolvers.

        Args:
            gap_ms: the session gap (also the stitching gap).
            idle_ms: a device with nothing undecided and no event for this long (event time)
                is forgotten, its last login with it.
            snapshot: from :meth:`snapshot`.
        """
        self._gap_ms = gap_ms
        self._idle_ms = idle_ms
        self.devices: dict[str, DeviceIdentities] = {}
        self._touched: set[str] = set()
        self._due: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}
        """(when a device may next be decidable, device) for devices with undecided events."""
        self._freed_at = -(2**62)
        self._watermark_ms = -(2**62)
        if snapshot is not None:
            self.devices = {
                d: DeviceIdentities(d, gap_ms, state) for d, state in snapshot.devices.items()
            }
            for name, seen in snapshot.last_seen.items():
                if name in self.devices:
                    self.devices[name].last_seen_ms = seen
            self._touched = {d for d, state in snapshot.devices.items() if state.pending}

    def add(
        self,
        device_id: str,
        event_ms: int,
        event_id: str,
        customer_id: str | None,
        is_login: bool,
    ) -> None:
        """Record one event of a device."""
        self.record_on(self.device(device_id), event_ms, event_id, customer_id, is_login)

    def device(self, device_id: str) -> DeviceIdentities:
        """The resolver of a device, created empty on its first event."""
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = DeviceIdentities(device_id, self._gap_ms)
        return device

    def record_on(
        self,
        device: DeviceIdentities,
        event_ms: int,
        event_id: str,
        customer_id: str | None,
        is_login: bool,
    ) -> None:
        """Record one event of a device already looked up with :meth:`device`."""
        if device.after_login(event_ms, event_id, customer_id, is_login):
            # Most events of a logged-in device: only its activity changes.
            if event_ms > device.last_seen_ms:
                device.last_seen_ms = event_ms
            return
        device.record(event_ms, event_id, customer_id, is_login)
        state = device.state
        # Only an anonymous event (to schedule) or a login (it may end a chain) can make an
        # undecided event decidable before its scheduled check; other events just wait for it.
        if customer_id is None or (is_login and state.pending):
            self._touched.add(device.device_id)
        else:
            size = len(state.times)
            if size >= 64 and size & (size - 1) == 0:
                # A logged-in device is not resolved every batch: trim its history here, at
                # each power of two so that the cost stays constant per event.
                device.prune(self._watermark_ms)
        if event_ms > device.last_seen_ms:
            device.last_seen_ms = event_ms

    def resolve(self, watermark_ms: int, *, everything: bool = False) -> list[Resolved]:
        """Decide what the watermark allows on the devices with undecided events."""
        self._watermark_ms = max(self._watermark_ms, watermark_ms)
        due = self._due
        candidates = set(self.devices) if everything else self._touched
        while due and due[0][0] <= watermark_ms:
            when, name = heapq.heappop(due)
            if self._scheduled.get(name) == when:
                del self._scheduled[name]
                candidates.add(name)
        decided: list[Resolved] = []
        for name in candidates:
            device = self.devices.get(name)
            if device is None or not device.state.pending:
                continue
            if device.state.pending[0][0] > watermark_ms:
                # Nothing decidable yet: look again when the watermark reaches it.
                self._schedule(name, device.state.pending[0][0])
                continue
            decided.extend(device.resolve(watermark_ms))
            if device.state.pending:
                self._schedule(name, device.next_check_ms(watermark_ms))
        self._touched = set()
        return decided

    def _schedule(self, name: str, when: int) -> None:
        """Check ``name`` again at ``when`` (one live entry per device in the heap)."""
        if self._scheduled.get(name) != when:
            self._scheduled[name] = when
            heapq.heappush(self._due, (when, name))

    def oldest_pending_ms(self) -> int | None:
        """Event time of the oldest undecided event of the shard."""
        oldest = [d.state.pending[0][0] for d in self.devices.values() if d.state.pending]
        return min(oldest) if oldest else None

    def free_idle(self, watermark_ms: int) -> int:
        """Forget devices idle for longer than the idle time; return how many."""
        # A full pass at most once per minute of event time.
        if watermark_ms - self._freed_at < 60_000:
            return 0
        self._freed_at = watermark_ms
        cutoff = watermark_ms - self._idle_ms
        idle = [
            name
            for name, device in self.devices.items()
            if device.last_seen_ms < cutoff and not device.state.pending
        ]
        for name in idle:
            del self.devices[name]
        return len(idle)

    def snapshot(self) -> ShardIdentitiesSnapshot:
        """The state as a struct of the live objects: encode it at once (it is not a copy)."""
        return ShardIdentitiesSnapshot(
            {name: d.state for name, d in self.devices.items()},
            {name: d.last_seen_ms for name, d in self.devices.items()},
        )
