"""A journey in progress: its events, one step at a time, and the time customers take.

A step is ``(gap before it in ms, event body, message key)``: journeys are generators of steps,
and the traffic places each step on the clock ``gap`` after the previous one.
"""

from __future__ import annotations

import random
from typing import Final

from sources.simulator.clock import MINUTE_MS
from sources.simulator.draws import Mix, below
from sources.simulator.messages import EventBodies, Properties

Step = tuple[int, bytes, bytes | None]
"""(gap before the event in ms, event body, message key)"""

_RAGE_CLICK_CHANCE: Final = 0.006
_APP_ERROR_CHANCE: Final = 0.015
_APP_ERRORS: Final = Mix(
    ("E_TIMEOUT", 45), ("E_SERVICE_UNAVAILABLE", 25), ("E_NETWORK", 20), ("E_SESSION_EXPIRED", 10)
)
# A rage click repeats the click 3 to 5 times, each 60 to 180 ms after the last.
_RAGE_REPEATS_MIN: Final = 3
_RAGE_REPEATS_SPREAD: Final = 3
_RAGE_GAP_MIN_MS: Final = 60
_RAGE_GAP_SPREAD_MS: Final = 120
_THINK_MIN_MS: Final = 1500
_THINK_MEAN_EXTRA_MS: Final = 9000
_THINK_MAX_MS: Final = 60_000
_QUICK_MIN_MS: Final = 300
_QUICK_SPREAD_MS: Final = 1200
_FORM_MIN_MS: Final = 6000
_FORM_MEAN_EXTRA_MS: Final = 15_000
_FORM_MAX_MS: Final = 90_000
# Between two journeys a customer comes back within minutes this often (2 to 25 minutes), else
# after well over half an hour (35 minutes to 10 hours): a new session either way.
_SHORT_PAUSE: Final = 0.45
_SHORT_PAUSE_MIN_MS: Final = 2 * MINUTE_MS
_SHORT_PAUSE_SPREAD_MS: Final = 23 * MINUTE_MS
_LONG_PAUSE_MIN_MS: Final = 35 * MINUTE_MS
_LONG_PAUSE_SPREAD_MS: Final = 565 * MINUTE_MS


def think_ms(rng: random.Random) -> int:
    """Time a customer spends on a screen before the next action: 1.5 s to a minute."""
    return min(_THINK_MAX_MS, _THINK_MIN_MS + int(rng.expovariate(1 / _THINK_MEAN_EXTRA_MS)))


def quick_ms(rng: random.Random) -> int:
    """Time for the app to react to an action: a screen loading after a click."""
    return _QUICK_MIN_MS + below(rng, _QUICK_SPREAD_MS)


def form_ms(rng: random.Random) -> int:
    """Time to fill in a step of a form."""
    return min(_FORM_MAX_MS, _FORM_MIN_MS + int(rng.expovariate(1 / _FORM_MEAN_EXTRA_MS)))


def pause_ms(rng: random.Random) -> int:
    """Time between two journeys of a customer: often short, often well over 30 minutes."""
    if rng.random() < _SHORT_PAUSE:
        return _SHORT_PAUSE_MIN_MS + below(rng, _SHORT_PAUSE_SPREAD_MS)
    return _LONG_PAUSE_MIN_MS + below(rng, _LONG_PAUSE_SPREAD_MS)


class Visit:
    """A journey in progress in one app on one device: where it is and who it is, as events."""

    __slots__ = ("bodies", "context", "key", "over", "rng", "screen")

    def __init__(self, rng: random.Random, bodies: EventBodies, context: bytes, key: bytes) -> None:
        """A visit that has shown no screen yet.

        Args:
            rng: the traffic's generator.
            bodies: writes the event bodies.
            context: the app's members on every event (see
                :func:`~sources.simulator.messages.app_context`).
            key: the message key, the device id until the customer logs in.
        """
        self.rng = rng
        self.bodies = bodies
        self.context = context
        self.key: bytes = key
        self.screen = ""
        # Set when the customer walks away mid-task: the journey ends without a logout.
        self.over = False

    def view(self, screen: str, gap_ms: int) -> Step:
        """The app shows ``screen``."""
        self.screen = screen
        return gap_ms, self.bodies.event("screen_view", self.context, screen), self.key

    def click(self, element: str, gap_ms: int) -> Step:
        """The customer clicks ``element`` on the current screen."""
        return gap_ms, self.bodies.event("click", self.context, self.screen, element), self.key

    def form(self, event_type: str, form: str, gap_ms: int) -> Step:
        """A form is started or submitted (``event_type``) on the current screen."""
        body = self.bodies.event(event_type, self.context, self.screen, None, form)
        return gap_ms, body, self.key

    def error(self, error_code: str, gap_ms: int) -> Step:
        """The app shows an error on the current screen."""
        properties: Properties = {"error_code": error_code}
        body = self.bodies.event("error", self.context, self.screen, properties=properties)
        return gap_ms, body, self.key

    def conversion(self, product: str, gap_ms: int, amount: int | None = None) -> Step:
        """The customer takes up ``product`` (for ``amount`` PLN, if it has one)."""
        properties: Properties = {"product": product}
        if amount is not None:
            properties["amount"] = amount
            properties["currency"] = "PLN"
        body = self.bodies.event("conversion", self.context, self.screen, properties=properties)
        return gap_ms, body, self.key

    def plain(self, event_type: str, element: str | None, gap_ms: int) -> Step:
        """Any other event on the current screen (a login, a logout)."""
        return gap_ms, self.bodies.event(event_type, self.context, self.screen, element), self.key

    # ``arrive`` and ``press`` return their steps as a tuple rather than yielding them: a tuple
    # is much cheaper to make than a generator, and they are called for most steps.

    def arrive(self, screen: str, gap_ms: int) -> tuple[Step, ...]:
        """A screen view, now and then followed by a technical error on that screen."""
        view = self.view(screen, gap_ms)
        rng = self.rng
        if rng.random() < _APP_ERROR_CHANCE:
            return view, self.error(_APP_ERRORS.pick(rng), quick_ms(rng))
        return (view,)

    def press(self, element: str, gap_ms: int) -> tuple[Step, ...]:
        """A click; rarely an impatient burst of 4 to 6 clicks within a second (rage click)."""
        click = self.click(element, gap_ms)
        rng = self.rng
        if rng.random() < _RAGE_CLICK_CHANCE:
            repeats = [
                self.click(element, _RAGE_GAP_MIN_MS + below(rng, _RAGE_GAP_SPREAD_MS))
                for _ in range(_RAGE_REPEATS_MIN + below(rng, _RAGE_REPEATS_SPREAD))
            ]
            return click, *repeats
        return (click,)
