"""What a campaign file is written against: :func:`campaign`, :class:`Trigger` and :class:`Offer`.

A campaign is a plain Python function of the event, the customer's profile and the customer's
recent behaviour, declared with the :func:`campaign` decorator::

    from offers import Offer, Trigger, campaign

    @campaign(
        id="atm-decline-personal-loan",
        version=1,
        priority=80,
        send_delay="45s",
        cooldown="30d",
        template="{first_name}, a personal loan of up to {limit} PLN is ready for you.",
        triggers=[Trigger(event_type="transaction", channel="atm",
                          properties={"kind": "atm_withdrawal", "status": "declined"})],
    )
    def atm_decline(event, profile, history):
        if event.properties.get("reason") != "insufficient_funds":
            return None
        return Offer(limit=10_000)

The rule returns None (or False) for no offer, True for an offer without parameters, an
:class:`Offer` or a dict of template parameters. The engine does everything else: consent, caps,
cooldown, quiet hours, arbitration, the send delay and control groups (docs/campaigns.md).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from state.contract import CHANNELS, EVENT_TYPES, Event, PropertyValue
from state.customer_store import CustomerProfile

if TYPE_CHECKING:
    from offers.history import History

OfferChannel = Literal["sms", "push", "email"]
OFFER_CHANNELS: tuple[str, ...] = ("sms", "push", "email")
Duration = int | float | str
"""Seconds, or text such as ``"45s"``, ``"10m"``, ``"2h"``, ``"30d"``."""
Rule = Callable[[Event, CustomerProfile, "History"], Any]

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
# What a template can always use, besides the rule's own parameters.
PROFILE_FIELDS: tuple[str, ...] = ("first_name", "segment", "customer_id")


class CampaignError(ValueError):
    """A campaign cannot be used; the message names the campaign and every problem."""


@functools.lru_cache(maxsize=1024)
def duration_ms(value: Duration, what: str = "duration") -> int:
    """Milliseconds of a duration given as seconds or as text like ``"45s"`` or ``"30d"``.

    Raises:
        CampaignError: When the value is negative or not understood.
    """
    if isinstance(value, bool):
        raise CampaignError(f"{what}: expected seconds or text like '45s', not {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise CampaignError(f"{what}: must not be negative, not {value!r}")
        return round(value * 1000)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise CampaignError(f"{what}: expected seconds or text like '45s', '10m', not {value!r}")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


def _as_set(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset((value,) if isinstance(value, str) else value)


@dataclass(frozen=True, slots=True, init=False)
class Trigger:
    """Which events a campaign looks at: every given field must match (equality).

    ``event_type`` and ``channel`` take one value or several; ``properties`` must all be present
    with equal values. A campaign's triggers are an index: its rule runs only for events that
    match at least one of them.
    """

    event_type: frozenset[str] | None
    channel: frozenset[str] | None
    screen: str | None
    element: str | None
    form: str | None
    properties: tuple[tuple[str, PropertyValue], ...]

    def __init__(
        self,
        event_type: str | Iterable[str] | None = None,
        *,
        channel: str | Iterable[str] | None = None,
        screen: str | None = None,
        element: str | None = None,
        form: str | None = None,
        properties: Mapping[str, PropertyValue] | None = None,
    ) -> None:
        """Build a trigger; see the class docstring."""
        object.__setattr__(self, "event_type", _as_set(event_type))
        object.__setattr__(self, "channel", _as_set(channel))
        object.__setattr__(self, "screen", screen)
        object.__setattr__(self, "element", element)
        object.__setattr__(self, "form", form)
        object.__setattr__(self, "properties", tuple(sorted((properties or {}).items())))

    def matches(self, event: Event) -> bool:
        """True when ``event`` has every value this trigger asks for."""
        if self.event_type is not None and event.event_type not in self.event_type:
            return False
        if self.channel is not None and event.channel not in self.channel:
            return False
        if self.screen is not None and event.screen != self.screen:
            return False
        if self.element is not None and event.element != self.element:
            return False
        if self.form is not None and event.form != self.form:
            return False
        props = event.properties
        for name, value in self.properties:
            if name not in props or props[name] != value:
                return False
        return True

    def problems(self) -> list[str]:
        """What is wrong with this trigger (unknown event types or channels)."""
        found = []
        for name, allowed, given in (
            ("event_type", EVENT_TYPES, self.event_type),
            ("channel", CHANNELS, self.channel),
        ):
            unknown = sorted((given or frozenset()) - set(allowed))
            if unknown:
                listed = ", ".join(map(repr, unknown))
                found.append(f"trigger {name} {listed} is not in the contract")
        return found


CONVERSION = Trigger("conversion")


class Offer:
    """A rule's positive answer: the template's parameters (numbers, text, booleans)."""

    __slots__ = ("params",)

    def __init__(self, **params: Any) -> None:
        """Keep the parameters."""
        self.params: dict[str, Any] = params

    def __repr__(self) -> str:
        """Readable in logs and tests."""
        return f"Offer({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


def as_params(result: Any) -> dict[str, Any] | None:
    """A rule's return value as template parameters, or None when it is "no offer".

    Raises:
        TypeError: When the value is none of the documented answers.
    """
    if result is None or result is False:
        return None
    if result is True:
        return {}
    if isinstance(result, Offer):
        return result.params
    if isinstance(result, Mapping):
        return dict(result)
    msg = f"a rule returns an Offer, a dict, True, False or None, not {type(result).__name__}"
    raise TypeError(msg)


def template_fields(template: str) -> list[str]:
    """The placeholder names of a ``str.format`` template.

    Raises:
        CampaignError: When the template does not parse or a placeholder is not a plain name.
    """
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise CampaignError(f"template does not parse: {exc}") from exc
    for _text, name, _spec, _conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise CampaignError(f"template placeholder {{{name}}} must be a plain name")
        names.append(name)
    return names


def _parse_date(value: date | str | None, what: str, problems: list[str]) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(f"{what} must be a date like '2026-12-31', not {value!r}")
        return None


@dataclass(frozen=True, slots=True)
class Campaign:
    """A validated campaign. Build it with :func:`campaign`; every field is documented there."""

    id: str
    version: int
    rule: Rule
    template: str
    triggers: tuple[Trigger, ...]
    priority: int = 0
    channel: str = "sms"
    valid_from: date | None = None
    valid_until: date | None = None
    send_delay_ms: int = 30_000
    cooldown_ms: int = 86_400_000
    daily_cap: int = 1
    control_share: float = 0.0
    cancel_if: tuple[Trigger, ...] = (CONVERSION,)
    description: str = ""
    source: str = field(default="", compare=False)
    """The file it was loaded from (set by the loader)."""

    def __call__(self, event: Event, profile: CustomerProfile, history: History) -> Any:
        """Run the rule (handy in a notebook or a unit test)."""
        return self.rule(event, profile, history)

    def valid_on(self, day: date) -> bool:
        """True when the campaign runs on this calendar day of the bank."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until

    def render(self, params: Mapping[str, Any]) -> str:
        """The template filled in.

        Raises:
            KeyError: When the template names a parameter the rule did not give.
        """
        return self.template.format_map(params)


def campaign(
    *,
    id: str,
    version: int,
    template: str,
    triggers: Iterable[Trigger],
    priority: int = 0,
    channel: str = "sms",
    valid_from: date | str | None = None,
    valid_until: date | str | None = None,
    send_delay: Duration = "30s",
    cooldown: Duration = "1d",
    daily_cap: int = 1,
    control_share: float = 0.0,
    cancel_if: Iterable[Trigger] = (CONVERSION,),
    description: str = "",
) -> Callable[[Rule], Campaign]:
    """Declare a campaign around its rule.

    Args:
        id: stable name (lowercase letters, digits, ``_.-``); part of every offer id.
        version: bump it when the rule or the template changes; carried on every offer.
        template: the message, a ``str.format`` template over the rule's parameters and the
            profile's ``first_name``, ``segment`` and ``customer_id``.
        triggers: the events the rule looks at (at least one).
        priority: higher wins when several campaigns match one event.
        channel: ``sms``, ``push`` or ``email``; the customer must have consented to it.
        valid_from: first calendar day (the bank's time zone) it runs, inclusive.
        valid_until: last calendar day it runs, inclusive.
        send_delay: how long after the trigger the offer goes out (re-checked then).
        cooldown: the least time between two offers of this campaign to one customer.
        daily_cap: offers of this campaign per customer per calendar day.
        control_share: share of customers (stable per customer and campaign) held out as a
            control group: their offers are decided and logged but not sent.
        cancel_if: events that cancel a delayed offer when the customer does one before it is
            sent (default: any conversion).
        description: what the campaign is for, for people reading the decisions.

    Raises:
        CampaignError: Listing every problem of the declaration.
    """

    def declare(rule: Rule) -> Campaign:
        problems: list[str] = []
        if not isinstance(id, str) or not _ID.match(id):
            problems.append(f"id must be 1-64 of a-z 0-9 _ . - (starting alnum), not {id!r}")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            problems.append(f"version must be a whole number from 1, not {version!r}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            problems.append(f"priority must be a whole number, not {priority!r}")
        if channel not in OFFER_CHANNELS:
            problems.append(f"channel must be one of {', '.join(OFFER_CHANNELS)}, not {channel!r}")
        start = _parse_date(valid_from, "valid_from", problems)
        end = _parse_date(valid_until, "valid_until", problems)
        if start is not None and end is not None and end < start:
            problems.append(f"valid_until {end} is before valid_from {start}")
        if not isinstance(daily_cap, int) or isinstance(daily_cap, bool) or daily_cap < 1:
            problems.append(f"daily_cap must be a whole number from 1, not {daily_cap!r}")
        if not isinstance(control_share, int | float) or not 0 <= control_share < 1:
            problems.append(f"control_share must be in [0, 1), not {control_share!r}")
        delays = {}
        for name, value in (("send_delay", send_delay), ("cooldown", cooldown)):
            try:
                delays[name] = duration_ms(value, name)
            except CampaignError as exc:
                problems.append(str(exc))
        if not isinstance(template, str) or not template.strip():
            problems.append("template must be non-empty text")
        else:
            try:
                template_fields(template)
            except CampaignError as exc:
                problems.append(str(exc))
        trigger_list = tuple(triggers)
        cancel_list = tuple(cancel_if)
        if not trigger_list:
            problems.append("triggers must name at least one Trigger")
        for trigger in (*trigger_list, *cancel_list):
            if not isinstance(trigger, Trigger):
                problems.append(f"triggers and cancel_if take Trigger(...), not {trigger!r}")
            else:
                problems.extend(trigger.problems())
        if not callable(rule):
            problems.append("the rule must be a function")
        if problems:
            raise CampaignError(f"campaign {id!r}: " + "; ".join(problems))
        return Campaign(
            id=id,
            version=version,
            rule=rule,
            template=template,
            triggers=trigger_list,
            priority=priority,
            channel=channel,
            valid_from=start,
            valid_until=end,
            send_delay_ms=delays["send_delay"],
            cooldown_ms=delays["cooldown"],
            daily_cap=daily_cap,
            control_share=float(control_share),
            cancel_if=cancel_list,
            description=description,
        )

    return declare
