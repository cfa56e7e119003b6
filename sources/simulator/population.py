"""The bank's simulated population: customers, their segments and their devices.

Customers get ids ``C0000001`` upwards, a segment and one or two devices with a banking app on
them. Prospects (people who are not known customers) get a fresh device each visit.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from sources.simulator.draws import Mix

if TYPE_CHECKING:
    from sources.simulator.config import SimulationConfig

SEGMENTS: Final = ("retail", "premium", "private", "business", "student")
"""The bank's customer segments."""

_SEGMENT_MIX: Final = Mix(
    ("retail", 62), ("premium", 13), ("private", 3), ("business", 9), ("student", 13)
)
# A customer's first device is a phone this often, else a computer.
_MOBILE_FIRST: Final = 0.68
# Share of customers with a second device; that one is the other kind (the phone app and the
# browser) this often, else a second device of the same kind.
_SECOND_DEVICE: Final = 0.35
_SECOND_DEVICE_OTHER_KIND: Final = 0.7
# Customers' devices have 12 hex digits (48 bits), prospects' devices 16 (64 bits).
_CUSTOMER_DEVICE_BITS: Final = 48
_PROSPECT_DEVICE_BITS: Final = 64
_MOBILE_OS: Final = Mix(("iOS", 42), ("Android", 58))
_WEB_OS: Final = Mix(("Windows", 68), ("macOS", 24), ("Linux", 8))
_OS_VERSIONS: Final = {
    "iOS": Mix(("26.2", 30), ("26.1", 22), ("18.7.3", 28), ("17.7.10", 12), ("16.7.12", 8)),
    "Android": Mix(("16", 24), ("15", 33), ("14", 22), ("13", 13), ("12", 8)),
    "Windows": Mix(("11", 70), ("10", 30)),
    "macOS": Mix(("26.2", 35), ("15.7.3", 40), ("14.8.3", 25)),
    "Linux": Mix(("6.17", 40), ("6.8", 60)),
}
# Newer app versions are more common: most customers update within weeks.
_APP_VERSIONS: Final = {
    "mobile-banking": Mix(
        ("5.14.0", 46), ("5.13.2", 28), ("5.12.1", 14), ("5.10.4", 8), ("4.9.7", 4)
    ),
    "web-banking": Mix(("2026.01.2", 55), ("2026.01.1", 28), ("2025.12.4", 17)),
}


class SimulatedDevice(msgspec.Struct, frozen=True, gc=False):
    """A customer's phone or computer and the banking app on it."""

    device_id: str
    channel: Literal["mobile", "web"]
    app: str
    app_version: str
    os: str
    os_version: str


class SimulatedCustomer(msgspec.Struct, frozen=True, gc=False):
    """A customer of the bank as the simulator sees them: id, segment and devices."""

    customer_id: str
    segment: str
    devices: tuple[SimulatedDevice, ...]


def customers(config: SimulationConfig) -> list[SimulatedCustomer]:
    """The customers of a simulation, the same ones :func:`~sources.simulator.generate` uses.

    Args:
        config: the simulation; only ``customers`` and ``seed`` matter here.

    Returns:
        ``config.customers`` customers with ids ``C0000001`` upwards, each with a segment and one
        or two devices.
    """
    rng = random.Random(f"customers:{config.seed}")
    device_ids: set[str] = set()
    result: list[SimulatedCustomer] = []
    for number in range(1, config.customers + 1):
        segment = _SEGMENT_MIX.pick(rng)
        first = new_device(rng, "mobile" if rng.random() < _MOBILE_FIRST else "web", device_ids)
        if rng.random() < _SECOND_DEVICE:
            other: Literal["mobile", "web"] = "web" if first.channel == "mobile" else "mobile"
            second_channel = other if rng.random() < _SECOND_DEVICE_OTHER_KIND else first.channel
            devices: tuple[SimulatedDevice, ...] = (
                first,
                new_device(rng, second_channel, device_ids),
            )
        else:
            devices = (first,)
        result.append(SimulatedCustomer(f"C{number:07d}", segment, devices))
    return result


def new_device(
    rng: random.Random, channel: Literal["mobile", "web"], taken: set[str] | None = None
) -> SimulatedDevice:
    """A device with the app on it; a customer's device id is unique among ``taken``.

    Customers' devices have 12 hex digits, prospects' devices 16: the two never collide, and
    prospects need no register of ids that would grow for as long as the simulation runs.

    Args:
        rng: the generator to draw from.
        channel: a phone (``mobile``) or a computer (``web``).
        taken: the customers' device ids so far (the new one is added); None for a prospect.

    Returns:
        The device, with its app, app version, OS and OS version.
    """
    if taken is None:
        device_id = f"D{rng.getrandbits(_PROSPECT_DEVICE_BITS):016x}"
    else:
        device_id = f"D{rng.getrandbits(_CUSTOMER_DEVICE_BITS):012x}"
        while device_id in taken:
            device_id = f"D{rng.getrandbits(_CUSTOMER_DEVICE_BITS):012x}"
        taken.add(device_id)
    if channel == "mobile":
        os_name, app = _MOBILE_OS.pick(rng), "mobile-banking"
    else:
        os_name, app = _WEB_OS.pick(rng), "web-banking"
    return SimulatedDevice(
        device_id,
        channel,
        app,
        _APP_VERSIONS[app].pick(rng),
        os_name,
        _OS_VERSIONS[os_name].pick(rng),
    )
