"""The traffic simulator: a deterministic stream of realistic bank events, with optional noise.

Customers use the mobile and web banking apps in journeys: a journey starts anonymous on a device,
usually logs in, moves across screens, fills in forms (and often abandons them), converts, hits
errors and now and then rage-clicks. Around the journeys the core banking system reports card
payments and transfers, ATMs report withdrawals (a few declined for insufficient funds) and
branches report cash operations.

Time is simulated. Event ``k`` happens at ``start + k / rate`` (or, with ``daily_curve``, at the
time the bank's daily curve has given ``k`` events: a quiet night, a busy evening), so a run holds
exactly ``rate * duration`` valid events whatever the number of customers, and the journeys in
flight interleave on that clock. A journey waits between its steps (a few seconds to a minute) and a
customer between journeys (minutes to hours). When more steps are due than the clock has room for,
they are served in order, a little later; when none is due, the next customer starts a journey,
early if need be. When every customer is already in a journey (few customers for the rate), all
journeys run faster alike, so their shape stays and only their pace changes. Everything is drawn
from random generators seeded by ``seed``: the same configuration always gives the same bytes.

Noise (duplicates, late events and malformed messages) draws from a generator of its own, so
turning noise on never changes the valid events themselves.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Final, Generic, Literal, TypeVar

import msgspec

from state.contract import EVENT_TYPES

MessageKind = Literal["valid", "late", "duplicate", "malformed"]
"""What a simulated message is: a valid event in event-time order, a valid event held back and
emitted late, a byte-identical copy of an earlier message, or a message that breaks the contract."""

DEFAULT_START: Final = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
OVERSIZE_BYTES: Final = 16_384
"""The job's default event size limit; an oversize malformed message is larger than this."""

SEGMENTS: Final = ("retail", "premium", "private", "business", "student")
MALFORMATIONS: Final = (
    "not_json",
    "json_array",
    "missing_event_id",
    "wrong_type",
    "unknown_event_type",
    "no_identity",
    "bad_event_time",
    "oversize",
    "nested_properties",
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_MS: Final = 60_000
# Share of clock ticks that carry a business event (ATM, card payment, transfer, branch) rather
# than an app event: the bank reports ~10M business events next to 315M clickstream events a day,
# a little more here so that campaigns have something to react to in short runs.
_BUSINESS_SHARE: Final = 0.04
# Share of new journeys made by people who are not (known) customers: a fresh device that never
# logs in.
_PROSPECT_SHARE: Final = 0.10
# Share of customers' journeys that never log in (browse the offers, read help, give up at login).
_STAY_ANONYMOUS: Final = 0.10
_RAGE_CLICK_CHANCE: Final = 0.006
_APP_ERROR_CHANCE: Final = 0.015
DAILY_CURVE: Final = (
    0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.45, 0.85, 1.20, 1.30, 1.30, 1.35,
    1.50, 1.40, 1.25, 1.20, 1.25, 1.45, 1.75, 2.00, 1.90, 1.50, 0.90, 0.40,
)  # fmt: skip
"""Relative traffic in each UTC hour of the day (mean 1): a quiet night, a morning rise, a lunch
peak and the evening's busiest hours, as retail banking apps see it."""


def _curve_times(start_ms: int, duration_ms: int, count: int) -> Callable[[int], int]:
    """Event ``k``'s time (ms) when ``count`` events follow :data:`DAILY_CURVE` over the run.

    The curve's cumulative is piecewise linear over the UTC hours the run touches; event ``k``
    falls where it reaches ``k / count`` of the whole. Calls must come with rising ``k``.
    """
    hour_ms = 3_600_000
    bounds: list[tuple[int, int, float, float]] = []  # (from ms, to ms, weight, cumulative)
    at, total = start_ms, 0.0
    end = start_ms + duration_ms
    while at < end:
        upto = min(end, (at // hour_ms + 1) * hour_ms)
        weight = DAILY_CURVE[(at // hour_ms) % 24]
        bounds.append((at, upto, weight, total))
        total += weight * (upto - at)
        at = upto
    per_event = total / count if count else 0.0
    segment = 0

    def time_of(k: int) -> int:
        nonlocal segment
        target = k * per_event
        while segment + 1 < len(bounds) and bounds[segment + 1][3] <= target:
            segment += 1
        begin, _, weight, before = bounds[segment]
        return begin + int((target - before) / weight)

    return time_of


# Bits for the customer index or ticket number in a queue entry, under the time in ms.
_LOW_BITS: Final = 40


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate. Every field has the ``clickstream simulate`` command's default.

    Attributes:
        customers: number of customers (ids ``C0000001`` upwards).
        rate: valid events per simulated second, across all customers.
        duration_s: simulated seconds; the run holds ``rate * duration_s`` valid events.
        seed: seeds every random choice; same configuration, same bytes.
        start: simulated time of the first event (timezone-aware).
        duplicate_rate: share of valid events re-emitted byte for byte a few to a few hundred
            messages later.
        late_rate: share of valid events emitted after newer events, up to ``late_max_s`` late.
        late_max_s: the most simulated seconds a late event lags behind the newest emitted event.
        malformed_rate: malformed messages per valid event (extra messages, not replacements).
        daily_curve: spread the events over the day as a bank's traffic is (see
            :data:`DAILY_CURVE`), ``rate`` being the day's average; otherwise evenly.
    """

    customers: int = 1000
    rate: float = 1000.0
    duration_s: float = 60.0
    seed: int = 42
    start: datetime = DEFAULT_START
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    late_max_s: float = 120.0
    malformed_rate: float = 0.0
    daily_curve: bool = False

    def __post_init__(self) -> None:
        """Reject a configuration that cannot be simulated, naming every bad value."""
        problems: list[str] = []
        if self.customers < 1:
            problems.append(f"customers must be at least 1, not {self.customers}")
        if not self.rate > 0:
            problems.append(f"rate must be above 0 events per second, not {self.rate}")
        if not self.duration_s >= 0:
            problems.append(f"duration must be 0 or more seconds, not {self.duration_s}")
        if self.start.utcoffset() is None:
            problems.append(f"start must carry a UTC offset, not {self.start.isoformat()}")
        for name in ("duplicate_rate", "late_rate", "malformed_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                problems.append(f"{name} must be between 0 and 1, not {value}")
        if not self.late_max_s >= 0.001:
            problems.append(f"late_max_s must be at least 0.001 seconds, not {self.late_max_s}")
        if problems:
            raise ValueError("invalid simulation: " + "; ".join(problems))

    @property
    def event_count(self) -> int:
        """Number of valid events in the run (late ones included, noise excluded)."""
        # The tolerance keeps e.g. 0.7/s for 10 s at 7 events, and a duration computed as
        # events / rate at that many events, despite binary floating point.
        return int(self.rate * self.duration_s * (1 + 1e-12) + 1e-9)

    @property
    def start_ms(self) -> int:
        """The start as milliseconds since the Unix epoch (sub-millisecond part dropped)."""
        return (self.start - _EPOCH) // timedelta(milliseconds=1)


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


class SimulatedMessage(msgspec.Struct, frozen=True, gc=False):
    """One message to send: the Kafka key (customer id, else device id) and the JSON bytes.

    ``kind`` says what the simulator made it (for tests and the run summary); it is not sent.
    """

    key: bytes | None
    value: bytes
    kind: MessageKind = "valid"


def customers(config: SimulationConfig) -> list[SimulatedCustomer]:
    """The customers of a simulation, the same ones :func:`generate` uses.

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
        first = _new_device(rng, "mobile" if rng.random() < 0.68 else "web", device_ids)
        if rng.random() < 0.35:
            # A second device is most often the other kind: the phone app and the browser.
            other: Literal["mobile", "web"] = "web" if first.channel == "mobile" else "mobile"
            second_channel = other if rng.random() < 0.7 else first.channel
            devices: tuple[SimulatedDevice, ...] = (
                first,
                _new_device(rng, second_channel, device_ids),
            )
        else:
            devices = (first,)
        result.append(SimulatedCustomer(f"C{number:07d}", segment, devices))
    return result


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


T = TypeVar("T")


class _Mix(Generic[T]):
    """A weighted choice, drawn with one ``random()`` call."""

    __slots__ = ("_bounds", "_options")

    def __init__(self, *weighted: tuple[T, float]) -> None:
        self._options = tuple(option for option, _ in weighted)
        self._bounds = tuple(accumulate(weight for _, weight in weighted))

    def pick(self, rng: random.Random) -> T:
        index = bisect(self._bounds, rng.random() * self._bounds[-1])
        return self._options[min(index, len(self._options) - 1)]


_SEGMENT_MIX: Final = _Mix(
    ("retail", 62), ("premium", 13), ("private", 3), ("business", 9), ("student", 13)
)
_MOBILE_OS: Final = _Mix(("iOS", 42), ("Android", 58))
_WEB_OS: Final = _Mix(("Windows", 68), ("macOS", 24), ("Linux", 8))
_OS_VERSIONS: Final = {
    "iOS": _Mix(("26.2", 30), ("26.1", 22), ("18.7.3", 28), ("17.7.10", 12), ("16.7.12", 8)),
    "Android": _Mix(("16", 24), ("15", 33), ("14", 22), ("13", 13), ("12", 8)),
    "Windows": _Mix(("11", 70), ("10", 30)),
    "macOS": _Mix(("26.2", 35), ("15.7.3", 40), ("14.8.3", 25)),
    "Linux": _Mix(("6.17", 40), ("6.8", 60)),
}
# Newer app versions are more common: most customers update within weeks.
_APP_VERSIONS: Final = {
    "mobile-banking": _Mix(
        ("5.14.0", 46), ("5.13.2", 28), ("5.12.1", 14), ("5.10.4", 8), ("4.9.7", 4)
    ),
    "web-banking": _Mix(("2026.01.2", 55), ("2026.01.1", 28), ("2025.12.4", 17)),
}
# How often an ATM withdrawal is declined for insufficient funds, by segment.
_ATM_DECLINE: Final = {
    "retail": 0.05,
    "premium": 0.02,
    "private": 0.01,
    "business": 0.03,
    "student": 0.09,
}
_ATM_AMOUNTS: Final = _Mix(
    (50, 12), (100, 26), (200, 24), (300, 12), (400, 6), (500, 12), (1000, 6), (2000, 2)
)
_CARD_ABROAD: Final = _Mix(
    (("DE", "EUR"), 25),
    (("CZ", "CZK"), 15),
    (("ES", "EUR"), 15),
    (("IT", "EUR"), 12),
    (("HR", "EUR"), 10),
    (("GB", "GBP"), 13),
    (("US", "USD"), 10),
)
_MERCHANTS: Final = _Mix(
    ("grocery", 34), ("fuel", 12), ("restaurant", 14), ("online", 22), ("travel", 6), ("other", 12)
)
_ABROAD_DECLINE_REASONS: Final = _Mix(
    ("foreign_transaction_blocked", 55), ("insufficient_funds", 25), ("suspected_fraud", 20)
)
_APP_ERRORS: Final = _Mix(
    ("E_TIMEOUT", 45), ("E_SERVICE_UNAVAILABLE", 25), ("E_NETWORK", 20), ("E_SESSION_EXPIRED", 10)
)
_OFFER_PRODUCTS: Final = _Mix(
    ("credit_card", 35), ("savings_account", 25), ("travel_insurance", 15), ("overdraft", 25)
)
_LOAN_AMOUNTS: Final = _Mix(
    (5000, 20), (10000, 30), (15000, 15), (20000, 15), (30000, 12), (50000, 8)
)
# What a logged-in customer comes to do, by segment: weights of checking accounts, making a
# transfer, card settings, browsing offers, applying for a loan and reading help.
_GOAL_WEIGHTS: Final = {
    "retail": (30, 25, 12, 12, 8, 8),
    "premium": (30, 25, 12, 16, 8, 5),
    "private": (42, 28, 10, 12, 3, 5),
    "business": (28, 42, 8, 8, 8, 6),
    "student": (28, 20, 15, 18, 9, 10),
}
_BUSINESS_EVENTS: Final = _Mix(
    ("card_payment", 58), ("atm_withdrawal", 30), ("transfer", 9), ("branch", 3)
)

# (gap before the event in ms, event body, message key)
_Step = tuple[int, bytes, bytes | None]
_Goal = Callable[["_Visit", SimulatedCustomer], Iterator[_Step]]

_EVENT_TYPE_FIELD: Final = {name: f'"event_type":"{name}",'.encode() for name in EVENT_TYPES}
_encode = msgspec.json.Encoder().encode


def _new_device(
    rng: random.Random, channel: Literal["mobile", "web"], taken: set[str] | None = None
) -> SimulatedDevice:
    """A device with the app on it; a customer's device id is unique among ``taken``.

    Customers' devices have 12 hex digits, prospects' devices 16: the two never collide, and
    prospects need no register of ids that would grow for as long as the simulation runs.
    """
    if taken is None:
        device_id = f"D{rng.getrandbits(64):016x}"
    else:
        device_id = f"D{rng.getrandbits(48):012x}"
        while device_id in taken:
            device_id = f"D{rng.getrandbits(48):012x}"
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


def _app_context(device: SimulatedDevice, customer_id: str | None) -> bytes:
    """The fields an app puts on every event, as JSON members (no braces)."""
    fields = {
        "channel": device.channel,
        "customer_id": customer_id,
        "device_id": device.device_id,
        "app": device.app,
        "app_version": device.app_version,
        "os": device.os,
        "os_version": device.os_version,
    }
    return _encode(fields)[1:-1]


def _core_context(customer_id: str) -> bytes:
    return b'"channel":"core","customer_id":' + _encode(customer_id)


# ATMs send no app fields (the contract makes them optional outside the app channels); branch
# tellers' terminals name theirs.
_BRANCH_TERMINAL: Final = (
    b'"app":"branch-teller","app_version":"12.4.0","os":"Windows","os_version":"11"'
)


class _Bodies:
    """Writes event bodies: every member after ``event_time``, closing brace included."""

    __slots__ = ("_tails",)

    def __init__(self) -> None:
        self._tails: dict[tuple[str | None, str | None, str | None], bytes] = {}

    def event(
        self,
        event_type: str,
        context: bytes,
        screen: str | None = None,
        element: str | None = None,
        form: str | None = None,
        *,
        properties: dict[str, str | int | float | bool] | None = None,
    ) -> bytes:
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
    properties: dict[str, str | int | float | bool] | None,
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
    return b"," + _encode(members)[1:]


def _below(rng: random.Random, bound: int) -> int:
    """A random int in ``[0, bound)``: ``randrange`` costs ten times as much."""
    return int(rng.random() * bound)


def _think_ms(rng: random.Random) -> int:
    """Time a customer spends on a screen before the next action: 1.5 s to a minute."""
    return min(60_000, 1500 + int(rng.expovariate(1 / 9000)))


def _quick_ms(rng: random.Random) -> int:
    """Time for the app to react to an action: a screen loading after a click."""
    return 300 + _below(rng, 1200)


def _form_ms(rng: random.Random) -> int:
    """Time to fill in a step of a form."""
    return min(90_000, 6000 + int(rng.expovariate(1 / 15000)))


def _pause_ms(rng: random.Random) -> int:
    """Time between two journeys of a customer: often short, often well over 30 minutes."""
    if rng.random() < 0.45:
        return 2 * _MINUTE_MS + _below(rng, 23 * _MINUTE_MS)
    return 35 * _MINUTE_MS + _below(rng, 565 * _MINUTE_MS)


def _money(amount: float) -> float:
    return round(amount, 2)


class _Visit:
    """A journey in progress in one app on one device: where it is and who it is, as events."""

    __slots__ = ("bodies", "context", "key", "over", "rng", "screen")

    def __init__(self, rng: random.Random, bodies: _Bodies, context: bytes, key: bytes) -> None:
        self.rng = rng
        self.bodies = bodies
        self.context = context
        self.key: bytes = key
        self.screen = ""
        # Set when the customer walks away mid-task: the journey ends without a logout.
        self.over = False

    def view(self, screen: str, gap_ms: int) -> _Step:
        self.screen = screen
        return gap_ms, self.bodies.event("screen_view", self.context, screen), self.key

    def click(self, element: str, gap_ms: int) -> _Step:
        return gap_ms, self.bodies.event("click", self.context, self.screen, element), self.key

    def form(self, event_type: str, form: str, gap_ms: int) -> _Step:
        body = self.bodies.event(event_type, self.context, self.screen, None, form)
        return gap_ms, body, self.key

    def error(self, error_code: str, gap_ms: int) -> _Step:
        properties: dict[str, str | int | float | bool] = {"error_code": error_code}
        body = self.bodies.event("error", self.context, self.screen, properties=properties)
        return gap_ms, body, self.key

    def conversion(self, product: str, gap_ms: int, amount: int | None = None) -> _Step:
        properties: dict[str, str | int | float | bool] = {"product": product}
        if amount is not None:
            properties["amount"] = amount
            properties["currency"] = "PLN"
        body = self.bodies.event("conversion", self.context, self.screen, properties=properties)
        return gap_ms, body, self.key

    def plain(self, event_type: str, element: str | None, gap_ms: int) -> _Step:
        return gap_ms, self.bodies.event(event_type, self.context, self.screen, element), self.key

    # ``arrive`` and ``press`` return their steps as a tuple rather than yielding them: a tuple
    # is much cheaper to make than a generator, and they are called for most steps.

    def arrive(self, screen: str, gap_ms: int) -> tuple[_Step, ...]:
        """A screen view, now and then followed by a technical error on that screen."""
        view = self.view(screen, gap_ms)
        rng = self.rng
        if rng.random() < _APP_ERROR_CHANCE:
            return view, self.error(_APP_ERRORS.pick(rng), _quick_ms(rng))
        return (view,)

    def press(self, element: str, gap_ms: int) -> tuple[_Step, ...]:
        """A click; rarely an impatient burst of 4 to 6 clicks within a second (rage click)."""
        click = self.click(element, gap_ms)
        rng = self.rng
        if rng.random() < _RAGE_CLICK_CHANCE:
            repeats = [
                self.click(element, 60 + _below(rng, 120)) for _ in range(3 + _below(rng, 3))
            ]
            return click, *repeats
        return (click,)


class _Traffic:
    """The simulation of one configuration; :meth:`messages` runs it."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = random.Random(f"traffic:{config.seed}")
        self.noise = random.Random(f"noise:{config.seed}")
        self.customers = customers(config)
        self.bodies = _Bodies()
        # Duplicates waiting to be re-emitted: (message number, tie-break, key, value).
        self.duplicates: list[tuple[int, int, bytes | None, bytes]] = []
        tasks: tuple[_Goal, ...] = (
            self._check_accounts,
            self._transfer,
            self._cards,
            self._offers,
            self._loan,
            self._help,
        )
        self.goals = {
            segment: _Mix(*zip(tasks, weights, strict=True))
            for segment, weights in _GOAL_WEIGHTS.items()
        }

    def messages(self) -> Iterator[SimulatedMessage]:
        config = self.config
        rng, noise = self.rng, self.noise
        everyone = self.customers
        journey, business_event = self._journey, self._business_event
        heappush, heappop = heapq.heappush, heapq.heappop
        stamp = _Timestamps().format
        start_ms = config.start_ms
        ms_per_event = 1000.0 / config.rate
        curve = (
            _curve_times(start_ms, int(config.duration_s * 1000), config.event_count)
            if config.daily_curve
            else None
        )
        id_prefix = _event_id_prefix(config)
        late_rate = config.late_rate
        late_max_ms = max(1, int(config.late_max_s * 1000))
        late_min_ms = min(1000, late_max_ms)
        noisy = config.duplicate_rate > 0 or config.malformed_rate > 0

        # The two queues hold plain ints, ``ms << _LOW_BITS | number``, which a heap compares much
        # faster than tuples. Journeys waiting for their next step: due time and a ticket for
        # ``next_steps``; customers between journeys: the time they are back and their index (they
        # come online over the first half hour).
        waiting: list[int] = []
        next_steps: dict[int, tuple[bytes, bytes | None, Iterator[_Step], int]] = {}
        idle = [
            (start_ms + _below(rng, 30 * _MINUTE_MS)) << _LOW_BITS | index
            for index in range(len(everyone))
        ]
        heapq.heapify(idle)
        low_mask = (1 << _LOW_BITS) - 1
        held_late: list[tuple[int, int, bytes | None, bytes]] = []
        key: bytes | None
        journey_time = start_ms
        ties = 0
        emitted = 0

        for tick in range(config.event_count):
            now = curve(tick) if curve is not None else start_ms + int(tick * ms_per_event)
            while held_late and held_late[0][0] <= now:
                _, _, late_key, late_value = heappop(held_late)
                yield SimulatedMessage(late_key, late_value, "late")
                emitted += 1
                if noisy:
                    for extra in self._noise_after(late_key, late_value, emitted):
                        yield extra
                        emitted += 1
            if noisy:
                for copy in self._due_duplicates(emitted):
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
                    body, key, steps, who = next_steps.pop(heappop(waiting) & low_mask)
                else:
                    if idle and rng.random() >= _PROSPECT_SHARE:
                        who = heappop(idle) & low_mask
                        steps = journey(everyone[who])
                    else:
                        who = -1
                        steps = journey(None)
                    _, body, key = next(steps)
                following = next(steps, None)
                if following is None:
                    if who >= 0:
                        heappush(idle, (journey_time + _pause_ms(rng)) << _LOW_BITS | who)
                else:
                    ties += 1
                    gap, next_body, next_key = following
                    next_steps[ties] = (next_body, next_key, steps, who)
                    heappush(waiting, (journey_time + gap) << _LOW_BITS | ties)

            value = b'{"event_id":"%s%d","event_time":"%s",%s' % (
                id_prefix,
                tick,
                stamp(now),
                body,
            )
            if late_rate and noise.random() < late_rate:
                ties += 1
                lag = noise.randint(late_min_ms, late_max_ms)
                heappush(held_late, (now + lag, ties, key, value))
                continue
            yield SimulatedMessage(key, value)
            emitted += 1
            if noisy:
                for extra in self._noise_after(key, value, emitted):
                    yield extra
                    emitted += 1

        # The run is over: what is still held back goes out now, oldest release first, then the
        # remaining duplicates.
        while held_late:
            _, _, late_key, late_value = heappop(held_late)
            yield SimulatedMessage(late_key, late_value, "late")
            emitted += 1
            if noisy:
                for extra in self._noise_after(late_key, late_value, emitted):
                    yield extra
                    emitted += 1
                for copy in self._due_duplicates(emitted):
                    yield copy
                    emitted += 1
        if noisy:
            yield from self._due_duplicates(None)

    # --- noise --------------------------------------------------------------------------------

    def _noise_after(
        self, key: bytes | None, value: bytes, emitted: int
    ) -> Iterator[SimulatedMessage]:
        """Schedule a duplicate of a just-emitted event, and maybe follow it by a malformed one."""
        noise = self.noise
        config = self.config
        if config.duplicate_rate and noise.random() < config.duplicate_rate:
            release_at = emitted + 3 + noise.randrange(298)
            heapq.heappush(self.duplicates, (release_at, emitted, key, value))
        if config.malformed_rate and noise.random() < config.malformed_rate:
            yield self._malformed(key, value)

    def _due_duplicates(self, emitted: int | None) -> Iterator[SimulatedMessage]:
        """Duplicates due at message number ``emitted`` (all of them when None)."""
        duplicates = self.duplicates
        while duplicates and (emitted is None or duplicates[0][0] <= emitted):
            _, _, key, value = heapq.heappop(duplicates)
            yield SimulatedMessage(key, value, "duplicate")

    def _malformed(self, key: bytes | None, value: bytes) -> SimulatedMessage:
        """A message that breaks the event contract, made from a valid event the way producers
        really get it wrong."""
        noise = self.noise
        malformation = MALFORMATIONS[noise.randrange(len(MALFORMATIONS))]
        if malformation == "not_json":
            # Cut short: a producer crashed mid-write, or a proxy truncated the body.
            return SimulatedMessage(key, value[: 1 + noise.randrange(len(value) - 2)], "malformed")
        if malformation == "json_array":
            return SimulatedMessage(key, b"[" + value + b"]", "malformed")
        event: dict[str, object] = msgspec.json.decode(value)
        properties = event.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        if malformation == "missing_event_id":
            del event["event_id"]
        elif malformation == "wrong_type":
            wrong_field = noise.randrange(3)
            if wrong_field == 0:
                event["event_time"] = _parse_ms(str(event["event_time"]))
            elif wrong_field == 1:
                event["channel"] = 2
            else:
                event["properties"] = "kind=unknown;source=legacy"
        elif malformation == "unknown_event_type":
            event["event_type"] = ("page_view", "swipe", "purchase", "Click")[noise.randrange(4)]
        elif malformation == "no_identity":
            event.pop("customer_id", None)
            event.pop("device_id", None)
            key = None
        elif malformation == "bad_event_time":
            event_time = str(event["event_time"])
            event["event_time"] = (
                event_time.removesuffix("Z")  # local time without an offset
                if noise.random() < 0.5
                else datetime.fromisoformat(event_time).strftime("%d.%m.%Y %H:%M:%S")
            )
        elif malformation == "oversize":
            frame = (
                "at pl.bank.mobile.transfer.TransferViewModel.submit(TransferViewModel.kt:214)\n"
            )
            properties["stack_trace"] = frame * (OVERSIZE_BYTES // len(frame) + 2)
            event["properties"] = properties
        else:  # nested_properties
            properties["device"] = {"model": "Pixel 8", "battery": 54, "rooted": False}
            event["properties"] = properties
        return SimulatedMessage(key, _encode(event), "malformed")

    # --- journeys -----------------------------------------------------------------------------

    def _journey(self, customer: SimulatedCustomer | None) -> Iterator[_Step]:
        """One visit to an app: anonymous first, then (usually) a login and a task or two.

        ``customer`` None is a prospect on a device the bank has never seen.
        """
        rng = self.rng
        if customer is None:
            channel: Literal["mobile", "web"] = "mobile" if rng.random() < 0.6 else "web"
            device = _new_device(rng, channel)
        elif len(customer.devices) == 1 or rng.random() < 0.65:
            device = customer.devices[0]
        else:
            device = customer.devices[1]
        visit = _Visit(rng, self.bodies, _app_context(device, None), device.device_id.encode())
        yield visit.view("splash" if device.channel == "mobile" else "home", 0)
        if customer is None or rng.random() < _STAY_ANONYMOUS:
            yield from self._browse_anonymously(visit)
            return
        yield from visit.arrive("login", _quick_ms(rng))
        if rng.random() < 0.06:
            yield visit.error("E_AUTH_FAILED", _think_ms(rng))
            if rng.random() < 0.35:
                return  # gave up at login
        # From the login on, the app knows the customer: events carry the customer id and are
        # keyed by it.
        visit.context = _app_context(device, customer.customer_id)
        visit.key = customer.customer_id.encode()
        yield visit.plain("login", "btn_login", _think_ms(rng))
        yield from visit.arrive("dashboard", _quick_ms(rng))
        goals = self.goals[customer.segment]
        for task in range(2 if rng.random() < 0.3 else 1):
            if task and visit.screen != "dashboard":
                yield from visit.press("btn_home", _think_ms(rng))
                yield from visit.arrive("dashboard", _quick_ms(rng))
            yield from goals.pick(rng)(visit, customer)
            if visit.over:
                return
        if rng.random() < 0.4:
            yield from visit.press("btn_logout", _think_ms(rng))
            yield visit.plain("logout", None, _quick_ms(rng))

    def _browse_anonymously(self, visit: _Visit) -> Iterator[_Step]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            yield from visit.arrive("offers", _think_ms(rng))
            yield from visit.press(f"offer_{_OFFER_PRODUCTS.pick(rng)}", _think_ms(rng))
            if rng.random() < 0.4:
                yield from visit.arrive("help", _quick_ms(rng))
        elif roll < 0.8:
            yield from visit.arrive("login", _quick_ms(rng))
            if rng.random() < 0.3:
                yield visit.error("E_AUTH_FAILED", _think_ms(rng))
        else:
            yield from visit.arrive("help", _think_ms(rng))
            for _ in range(1 + _below(rng, 3)):
                yield from visit.press("faq_item", _think_ms(rng))

    def _check_accounts(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("accounts", _think_ms(rng))
        for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):
            yield from visit.press("account_row", _think_ms(rng))
            yield from visit.arrive("account_details", _quick_ms(rng))
            if rng.random() < 0.2:
                yield from visit.press("btn_download_statement", _think_ms(rng))
            yield from visit.press("btn_back", _think_ms(rng))
            yield from visit.arrive("accounts", _quick_ms(rng))

    def _transfer(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("transfer", _think_ms(rng))
        yield visit.form("form_start", "transfer_form", _quick_ms(rng))
        yield from visit.press("btn_continue", _form_ms(rng))
        if rng.random() < 0.14:
            yield from visit.press("btn_back", _think_ms(rng))
            yield from visit.arrive("dashboard", _quick_ms(rng))
            return
        yield from visit.arrive("transfer_confirm", _quick_ms(rng))
        yield from visit.press("btn_submit", _think_ms(rng))
        if rng.random() < 0.05:
            yield visit.error("E_OTP_FAILED", _quick_ms(rng))
            if rng.random() < 0.5:
                visit.over = True
                return
            yield from visit.press("btn_submit", _think_ms(rng))
        yield visit.form("form_submit", "transfer_form", _quick_ms(rng))
        # The core banking system books the transfer a moment later.
        properties: dict[str, str | int | float | bool] = {
            "kind": "transfer",
            "status": "completed",
            "amount": _money(min(50_000.0, rng.lognormvariate(5.3, 1.1))),
            "currency": "PLN",
            "transfer_type": "instant" if rng.random() < 0.3 else "domestic",
        }
        booked = self.bodies.event(
            "transaction", _core_context(customer.customer_id), properties=properties
        )
        yield _quick_ms(rng), booked, visit.key
        yield from visit.arrive("dashboard", _quick_ms(rng))

    def _loan(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("offers", _think_ms(rng))
        yield from visit.press("offer_personal_loan", _think_ms(rng))
        yield from visit.arrive("loan_application", _quick_ms(rng))
        yield visit.form("form_start", "loan_application_form", _quick_ms(rng))
        for _ in range(1 + _below(rng, 3)):
            yield from visit.press("btn_continue", _form_ms(rng))
        if rng.random() < 0.45:
            yield from visit.press("btn_submit", _form_ms(rng))
            yield visit.form("form_submit", "loan_application_form", _quick_ms(rng))
            yield visit.conversion("personal_loan", _quick_ms(rng), _LOAN_AMOUNTS.pick(rng))
            return
        # Abandoned: most often the customer simply leaves on the application screen.
        if rng.random() < 0.3:
            yield visit.error("E_VALIDATION", _quick_ms(rng))
        if rng.random() < 0.75:
            visit.over = True
            return
        yield from visit.press("btn_back", _think_ms(rng))
        yield from visit.arrive("dashboard", _quick_ms(rng))

    def _cards(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("cards", _think_ms(rng))
        yield from visit.press("card_tile", _think_ms(rng))
        yield from visit.arrive("card_settings", _quick_ms(rng))
        if rng.random() < 0.4:
            yield from visit.press("toggle_online_payments", _think_ms(rng))
            return
        yield visit.form("form_start", "card_limit_form", _quick_ms(rng))
        if rng.random() < 0.75:
            yield from visit.press("btn_submit", _form_ms(rng))
            yield visit.form("form_submit", "card_limit_form", _quick_ms(rng))
        else:
            yield from visit.press("btn_back", _form_ms(rng))
        yield from visit.arrive("cards", _quick_ms(rng))

    def _offers(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("offers", _think_ms(rng))
        product = _OFFER_PRODUCTS.pick(rng)
        yield from visit.press(f"offer_{product}", _think_ms(rng))
        if rng.random() < 0.12:
            yield from visit.press("btn_apply", _think_ms(rng))
            yield visit.conversion(product, _quick_ms(rng))
        else:
            yield from visit.press("btn_back", _think_ms(rng))

    def _help(self, visit: _Visit, customer: SimulatedCustomer) -> Iterator[_Step]:
        rng = self.rng
        yield from visit.arrive("help", _think_ms(rng))
        for _ in range(1 + _below(rng, 3)):
            yield from visit.press("faq_item", _think_ms(rng))
        if rng.random() < 0.2:
            yield from visit.press("btn_contact_consultant", _think_ms(rng))

    # --- business events ----------------------------------------------------------------------

    def _business_event(self) -> tuple[bytes, bytes]:
        """One event from the core banking system, an ATM or a branch, for a random customer."""
        rng = self.rng
        customer = self.customers[_below(rng, len(self.customers))]
        customer_id = customer.customer_id
        kind = _BUSINESS_EVENTS.pick(rng)
        properties: dict[str, str | int | float | bool]
        if kind == "atm_withdrawal":
            declined = rng.random() < _ATM_DECLINE[customer.segment]
            properties = {"kind": kind, "status": "declined" if declined else "approved"}
            if declined:
                properties["reason"] = "insufficient_funds"
            properties["amount"] = _ATM_AMOUNTS.pick(rng)
            properties["currency"] = "PLN"
            properties["atm_id"] = f"ATM-{1 + _below(rng, 3999):04d}"
            context = b'"channel":"atm","customer_id":' + _encode(customer_id)
        elif kind == "card_payment":
            travels = customer.segment in ("premium", "private")
            if rng.random() < (0.15 if travels else 0.06):
                country, currency = _CARD_ABROAD.pick(rng)
                reason = _ABROAD_DECLINE_REASONS.pick(rng) if rng.random() < 0.14 else None
            else:
                country, currency = "PL", "PLN"
                reason = "insufficient_funds" if rng.random() < 0.025 else None
            properties = {"kind": kind, "status": "approved" if reason is None else "declined"}
            if reason is not None:
                properties["reason"] = reason
            properties["amount"] = _money(min(20_000.0, rng.lognormvariate(3.8, 1.0)))
            properties["currency"] = currency
            properties["country"] = country
            properties["merchant_category"] = _MERCHANTS.pick(rng)
            context = _core_context(customer_id)
        elif kind == "transfer":
            # Standing orders and direct debits: booked without anyone opening the app.
            rejected = rng.random() < 0.02
            properties = {
                "kind": kind,
                "status": "rejected" if rejected else "completed",
                "amount": _money(min(50_000.0, rng.lognormvariate(6.0, 0.8))),
                "currency": "PLN",
                "transfer_type": "standing_order",
            }
            if rejected:
                properties["reason"] = "insufficient_funds"
            context = _core_context(customer_id)
        else:
            deposit = rng.random() < 0.6
            properties = {
                "kind": "cash_deposit" if deposit else "cash_withdrawal",
                "status": "approved",
                "amount": 100 * (1 + _below(rng, 50)),
                "currency": "PLN",
                "branch_id": f"B{1 + _below(rng, 599):03d}",
            }
            context = b'"channel":"branch","customer_id":%s,%s' % (
                _encode(customer_id),
                _BRANCH_TERMINAL,
            )
        body = self.bodies.event("transaction", context, properties=properties)
        return body, customer_id.encode()


class _Timestamps:
    """RFC 3339 UTC timestamps with milliseconds, formatting each second only once."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def format(self, ms: int) -> bytes:
        second, millisecond = divmod(ms, 1000)
        if second != self._second:
            self._second = second
            moment = _EPOCH + timedelta(seconds=second)
            self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.").encode()
        return b"%s%03dZ" % (self._prefix, millisecond)


def _parse_ms(event_time: str) -> int:
    return (datetime.fromisoformat(event_time) - _EPOCH) // timedelta(milliseconds=1)


def _event_id_prefix(config: SimulationConfig) -> bytes:
    """``e-<seed>-<run>-``: ``run`` tells apart runs of one seed with a different start, size or
    rate, so that their events never share an id (the job would drop them as duplicates)."""
    run = (
        f"{config.start_ms}|{config.customers}|{float(config.rate)!r}|{float(config.duration_s)!r}"
    ) + ("|daily" if config.daily_curve else "")
    tag = hashlib.blake2b(run.encode(), digest_size=3).hexdigest()
    return f"e-{config.seed}-{tag}-".encode()
