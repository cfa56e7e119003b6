"""The traffic: journeys and business events placed on the clock, noise added, as messages.

Event ``k`` happens at the clock's time for ``k`` (see :mod:`sources.simulator.clock`), so a run
holds exactly ``rate * duration`` valid events whatever the number of customers, and the journeys
in flight interleave on that clock. A journey waits between its steps (a few seconds to a minute)
and a customer between journeys (minutes to hours). When more steps are due than the clock has
room for, they are served in order, a little later; when none is due, the next customer starts a
journey, early if need be. When every customer is already in a journey (few customers for the
rate), all journeys run faster alike, so their shape stays and only their pace changes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Final

from sources.simulator.clock import MINUTE_MS, Timestamps, curve_times
from sources.simulator.config import SimulationConfig
from sources.simulator.draws import below
from sources.simulator.journeys import Journeys
from sources.simulator.messages import (
    ENVELOPE,
    EventBodies,
    SimulatedMessage,
    event_id_prefix,
)
from sources.simulator.noise import Noise
from sources.simulator.population import customers
from sources.simulator.transactions import Transactions
from sources.simulator.visits import Step, pause_ms

# Share of clock ticks that carry a business event (ATM, card payment, transfer, branch) rather
# than an app event: the bank reports ~10M business events next to 315M clickstream events a day,
# a little more here so that campaigns have something to react to in short runs.
_BUSINESS_SHARE: Final = 0.04
# Share of new journeys made by people who are not (known) customers: a fresh device that never
# logs in.
_PROSPECT_SHARE: Final = 0.10
# Customers come online over the run's first half hour.
_ONLINE_WITHIN_MS: Final = 30 * MINUTE_MS
# Bits for the customer index or ticket number in a queue entry, under the time in ms.
_LOW_BITS: Final = 40
_LOW_MASK: Final = (1 << _LOW_BITS) - 1
# The customer index of a prospect's journey: nobody goes back to the idle queue after it.
_PROSPECT: Final = -1


def generate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Simulate the bank's traffic: valid events in event-time order, plus the configured noise.

    The output is a pure function of ``config``: no wall clock, no global random state.

    Args:
        config: what to simulate.

    Returns:
        The messages in emission order, generated lazily. Valid events come in event-time order;
        late events come up to ``late_max_s`` after newer ones; duplicates repeat an earlier
        message byte for byte and with the same key; malformed messages are extra messages that
        break the event contract.
    """
    return _Traffic(config).messages()


class _Traffic:
    """The simulation of one configuration; :meth:`messages` runs it."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = random.Random(f"traffic:{config.seed}")
        self.noise = Noise(config)
        self.customers = customers(config)
        bodies = EventBodies()
        self.journeys = Journeys(self.rng, bodies)
        self.transactions = Transactions(self.rng, bodies, self.customers)

    def messages(self) -> Iterator[SimulatedMessage]:
        config = self.config
        rng, noise = self.rng, self.noise
        everyone = self.customers
        journey, business_event = self.journeys.journey, self.transactions.event
        heappush, heappop = heapq.heappush, heapq.heappop
        stamp = Timestamps().format
        envelope = ENVELOPE
        start_ms = config.start_ms
        ms_per_event = 1000.0 / config.rate
        curve = (
            curve_times(start_ms, int(config.duration_s * 1000), config.event_count)
            if config.daily_curve
            else None
        )
        id_prefix = event_id_prefix(config)
        late_rate = config.late_rate
        held_late = noise.held_late
        noisy = noise.follows_messages

        # The two queues hold plain ints, ``ms << _LOW_BITS | number``, which a heap compares much
        # faster than tuples. Journeys waiting for their next step: due time and a ticket for
        # ``next_steps``; customers between journeys: the time they are back and their index.
        waiting: list[int] = []
        next_steps: dict[int, tuple[bytes, bytes | None, Iterator[Step], int]] = {}
        idle = [
            (start_ms + below(rng, _ONLINE_WITHIN_MS)) << _LOW_BITS | index
            for index in range(len(everyone))
        ]
        heapq.heapify(idle)
        key: bytes | None
        journey_time = start_ms
        tickets = 0
        emitted = 0

        for tick in range(config.event_count):
            now = curve(tick) if curve is not None else start_ms + int(tick * ms_per_event)
            if held_late and held_late[0][0] <= now:
                for late_key, late_value in noise.late_due(now):
                    yield SimulatedMessage(late_key, late_value, "late")
                    emitted += 1
                    if noisy:
                        for extra in noise.after(late_key, late_value, emitted):
                            yield extra
                            emitted += 1
            if noisy:
                for copy in noise.due_duplicates(emitted):
                    yield copy
                    emitted += 1

            if rng.random() < _BUSINESS_SHARE:
                body, key = business_event()
            else:
                # Journeys are planned on their own clock, which keeps pace with the event clock
                # unless the customers are too few for the rate; then it runs ahead, and every
                # journey's pace is shortened alike.
                if journey_time < now:
                    journey_time = now
                due = waiting[0] >> _LOW_BITS if waiting else 0
                # A due step goes first. When none is due, the next customer starts a journey
                # (earlier than they planned if need be); only when every customer is busy does
                # the journey clock jump to the next step.
                if waiting and (due <= journey_time or not idle):
                    if due > journey_time:
                        journey_time = due
                    body, key, steps, who = next_steps.pop(heappop(waiting) & _LOW_MASK)
                else:
                    if idle and rng.random() >= _PROSPECT_SHARE:
                        who = heappop(idle) & _LOW_MASK
                        steps = journey(everyone[who])
                    else:
                        who = _PROSPECT
                        steps = journey(None)
                    _, body, key = next(steps)
                following = next(steps, None)
                if following is None:
                    if who != _PROSPECT:
                        heappush(idle, (journey_time + pause_ms(rng)) << _LOW_BITS | who)
                else:
                    tickets += 1
                    gap, next_body, next_key = following
                    next_steps[tickets] = (next_body, next_key, steps, who)
                    heappush(waiting, (journey_time + gap) << _LOW_BITS | tickets)

            value = envelope % (id_prefix, tick, stamp(now), body)
            if late_rate and noise.holds_back(now, key, value):
                continue
            yield SimulatedMessage(key, value)
            emitted += 1
            if noisy:
                for extra in noise.after(key, value, emitted):
                    yield extra
                    emitted += 1

        # The run is over: what is still held back goes out now, oldest release first, then the
        # remaining duplicates.
        for late_key, late_value in noise.late_due(None):
            yield SimulatedMessage(late_key, late_value, "late")
            emitted += 1
            if noisy:
                for extra in noise.after(late_key, late_value, emitted):
                    yield extra
                    emitted += 1
                for copy in noise.due_duplicates(emitted):
                    yield copy
                    emitted += 1
        if noisy:
            yield from noise.due_duplicates(None)
