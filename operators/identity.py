"""Identity of an event (PRODUCT.md, "Identity"): the native core's shard state, and the old
Python snapshot format it migrates from.

The rules live in ``native/src/identity.rs`` (held by :class:`clickstream_native.ShardCore`,
one call per shard batch); ``tests/support/journey_reference.py`` is their executable specification.
An event with a ``customer_id`` is that customer's; an anonymous event is decided once the
shard's watermark has passed it: the customer of the device's latest login at or before it,
else the customer of a later login it chains to with no gap over the session gap, else the
device itself.
"""

from __future__ import annotations

import msgspec
from clickstream_native import IDENTITY_SNAPSHOT_VERSION

from state.archive_layout import DEVICE_PREFIX
from state.moments import NEVER


def device_identity(device_id: str) -> str:
    """The anonymous identity of a device (never equal to a customer id)."""
    return f"{DEVICE_PREFIX}{device_id}"


class DeviceState(msgspec.Struct, gc=False):
    """One device's identity state as shard snapshots up to version 3 stored it."""

    logins: list[tuple[int, str, str]] = []
    times: list[tuple[int, str]] = []
    pending: list[tuple[int, str]] = []


class ShardIdentitiesSnapshot(msgspec.Struct, frozen=True):
    """A shard's identity state as shard snapshots up to version 3 stored it."""

    devices: dict[str, DeviceState]
    last_seen: dict[str, int]


def native_snapshot(old: ShardIdentitiesSnapshot) -> bytes:
    """The same state in the native core's snapshot bytes (a device never seen: ``NEVER``)."""
    devices = [
        (name, (state.logins, state.times, state.pending, old.last_seen.get(name, NEVER)))
        for name, state in old.devices.items()
    ]
    return msgspec.msgpack.encode((IDENTITY_SNAPSHOT_VERSION, devices))


def empty_snapshot() -> bytes:
    """The native core's snapshot bytes of a shard with no devices."""
    return msgspec.msgpack.encode((IDENTITY_SNAPSHOT_VERSION, []))
