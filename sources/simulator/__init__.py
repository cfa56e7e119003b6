"""The traffic simulator: a deterministic stream of realistic bank events, with optional noise.

Customers use the mobile and web banking apps in journeys: a journey starts anonymous on a device,
usually logs in, moves across screens, fills in forms (and often abandons them), converts, hits
errors and now and then rage-clicks. Around the journeys the core banking system reports card
payments and transfers, ATMs report withdrawals (a few declined for insufficient funds) and
branches report cash operations.

Time is simulated. Event ``k`` happens at ``start + k / rate`` (or, with ``daily_curve``, at the
time the bank's daily curve has given ``k`` events: a quiet night, a busy evening), so a run holds
exactly ``rate * duration`` valid events whatever the number of customers. Everything is drawn
from random generators seeded by ``seed``: the same configuration always gives the same bytes.
Noise (duplicates, late events and malformed messages) draws from a generator of its own, so
turning noise on never changes the valid events themselves.

The modules, one job each:

- ``config``: what to simulate (:class:`SimulationConfig`).
- ``population``: the customers, their segments and devices.
- ``journeys`` and ``visits``: what people do in the apps, step by step, and how long they take.
- ``transactions``: what the core banking system, ATMs and branches report.
- ``noise``: duplicates, late events and malformed messages.
- ``messages``: the events as Kafka keys and JSON bytes (:class:`SimulatedMessage`).
- ``clock``: when each event happens (the daily curve) and its timestamp.
- ``traffic``: all of it placed on the clock, in emission order (:func:`generate`).
- ``draws``: the cheap random draws the others share.
"""

from sources.simulator.clock import DAILY_CURVE
from sources.simulator.config import DEFAULT_START, SimulationConfig
from sources.simulator.messages import MessageKind, SimulatedMessage
from sources.simulator.noise import MALFORMATIONS, OVERSIZE_BYTES
from sources.simulator.population import (
    SEGMENTS,
    SimulatedCustomer,
    SimulatedDevice,
    customers,
)
from sources.simulator.traffic import generate

__all__ = [
    "DAILY_CURVE",
    "DEFAULT_START",
    "MALFORMATIONS",
    "OVERSIZE_BYTES",
    "SEGMENTS",
    "MessageKind",
    "SimulatedCustomer",
    "SimulatedDevice",
    "SimulatedMessage",
    "SimulationConfig",
    "customers",
    "generate",
]
