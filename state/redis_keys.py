"""Every Redis key family the job writes: the one place the writers and the Grafana dashboards
name them, so that a renamed family cannot leave a panel empty.

A key is ``<prefix>:<family>``; ``docs/redis-keys.md`` documents each family in :data:`FAMILIES`
(``tests/unit/test_redis_keys.py`` holds the two together). The dashboards build the same keys
with Grafana variables in place of the day (``$day``) and the prefix (``$prefix``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NamedTuple

KeyType = Literal["hash", "sorted set", "stream"]

DIMENSIONS = ("os", "app_version", "app", "channel", "segment", "all")
"""The cross-sections of the day figures (``by_<dimension>``)."""

# Day families of the journeys (``<prefix>:day:<day>:<family>``).
TOP_SCREENS = "top:screens"
TOP_EXIT_SCREENS = "top:exit_screens"
TOP_ERRORS = "top:errors"
TOP_ABANDONED_FORMS = "top:abandoned_forms"
TOP_RAGE_CLICKS = "top:rage_clicks"
TRANSITIONS = "transitions"
SCREEN_SESSIONS, SCREEN_CONVERSIONS = "screen:sessions", "screen:conversions"
BUTTON_SESSIONS, BUTTON_CONVERSIONS = "button:sessions", "button:conversions"
FORMS_STARTED, FORMS_SUBMITTED = "form:started", "form:submitted"
CONVERSION_RATE, COMPLETION_RATE = "conversion_rate", "completion_rate"

# Day families of the offers (``<prefix>:offers:<day>:<family>``).
OFFERS_MATCHED, OFFERS_SENT, OFFERS_HELD_OUT = "matched", "sent", "held_out"
OFFERS_SUPPRESSED, OFFERS_RULE_ERROR = "suppressed", "rule_error"
OFFERS_REASONS, OFFERS_LATENCY = "reasons", "latency"

# Per-minute families (``<prefix>:minute:<family>:<minute>`` and ``<prefix>:series:<family>``).
EVENTS_BY_TYPE = "events_by_type"
PIPELINE_SAMPLED = ("valid", "duplicates", "late", "dead_letters", "offer_rule_errors")
"""The pipeline counters also kept over time (:func:`ops_counter_key`)."""
JOURNEYS = "journeys"
OFFERS = "offers"


def by_dimension(dimension: str, figure: str) -> str:
    """A cross-section family: ``by_os:sessions``."""
    return f"by_{dimension}:{figure}"


def funnel(name: str) -> str:
    """A funnel's family: ``funnel:loan_application``."""
    return f"funnel:{name}"


def campaign(campaign_id: str) -> str:
    """One campaign's offers family: ``campaign:atm_decline_personal_loan``."""
    return f"campaign:{campaign_id}"


def day_label(day_index: int) -> str:
    """The UTC day ``YYYY-MM-DD`` of a day index (epoch ms // 86,400,000)."""
    return datetime.fromtimestamp(day_index * 86_400, UTC).strftime("%Y-%m-%d")


def minute_label(minute_ms: int) -> str:
    """The UTC minute as it appears in key names: ``2026-01-15T08:01``."""
    return datetime.fromtimestamp(minute_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def day_key(prefix: str, day: str, family: str) -> str:
    """A journeys day figure: ``cs:day:2026-01-15:top:screens``."""
    return f"{prefix}:day:{day}:{family}"


def offers_key(prefix: str, day: str, family: str) -> str:
    """An offers day figure: ``cs:offers:2026-01-15:sent``."""
    return f"{prefix}:offers:{day}:{family}"


def month_key(prefix: str, month: str, figure: str) -> str:
    """A figure of every day of a UTC month, a field per day of month (``01``…``31``):
    ``cs:month:2026-01:sessions``.
    """
    return f"{prefix}:month:{month}:{figure}"


def days_key(prefix: str) -> str:
    """The days that have figures: a sorted set, day ``YYYY-MM-DD`` → its events."""
    return f"{prefix}:days"


def minute_key(prefix: str, family: str, minute: str) -> str:
    """One UTC minute of a per-minute figure: ``cs:minute:journeys:2026-01-15T08:01``."""
    return f"{prefix}:minute:{family}:{minute}"


def series_key(prefix: str, family: str) -> str:
    """The stream of a per-minute figure, an entry per closed minute: ``cs:series:journeys``."""
    return f"{prefix}:series:{family}"


def ops_counter_key(prefix: str, counter: str) -> str:
    """One pipeline counter sampled by the wall clock (a stream): ``cs:ops:dead_letters``.

    Keys under ``<prefix>:ops:`` are the job's view of its own work by the wall clock, for
    operations (panels over time, alert rules): not figures of the events, they differ from one
    run of the same input to the next.
    """
    return f"{prefix}:ops:{counter}"


def ops_lag_key(prefix: str) -> str:
    """The consumer lag: messages each input partition is behind its end, ``cs:ops:lag``."""
    return f"{prefix}:ops:lag"


def ops_recent_key(prefix: str) -> str:
    """How much each pipeline counter grew lately, by the wall clock: ``cs:ops:recent``."""
    return f"{prefix}:ops:recent"


def pipeline_key(prefix: str) -> str:
    """The job's own health counters: ``cs:pipeline``."""
    return f"{prefix}:pipeline"


class KeyFamily(NamedTuple):
    """A documented key family: its pattern as docs/redis-keys.md writes it, and its type."""

    pattern: str
    type: KeyType


_DAY = "cs:day:<day>"
_OFFERS = "cs:offers:<day>"
FAMILIES: tuple[KeyFamily, ...] = (
    KeyFamily(minute_key("cs", EVENTS_BY_TYPE, "<YYYY-MM-DDTHH:MM>"), "hash"),
    KeyFamily(series_key("cs", EVENTS_BY_TYPE), "stream"),
    KeyFamily(pipeline_key("cs"), "hash"),
    KeyFamily(ops_counter_key("cs", "<counter>"), "stream"),
    KeyFamily(ops_recent_key("cs"), "hash"),
    KeyFamily(ops_lag_key("cs"), "hash"),
    KeyFamily(minute_key("cs", JOURNEYS, "<YYYY-MM-DDTHH:MM>"), "hash"),
    KeyFamily(series_key("cs", JOURNEYS), "stream"),
    KeyFamily(days_key("cs"), "sorted set"),
    *(KeyFamily(month_key("cs", "<YYYY-MM>", figure), "hash") for figure in
      ("events", "sessions", "conversions", CONVERSION_RATE)),
    *(KeyFamily(f"{_DAY}:by_<dim>:{figure}", "hash") for figure in
      ("events", "sessions", "conversions", CONVERSION_RATE)),
    *(KeyFamily(f"{_DAY}:{family}", "sorted set") for family in
      (TOP_SCREENS, TOP_EXIT_SCREENS, TOP_ERRORS, TOP_ABANDONED_FORMS, TOP_RAGE_CLICKS,
       TRANSITIONS)),
    *(KeyFamily(f"{_DAY}:{family}", "hash") for family in
      (SCREEN_SESSIONS, SCREEN_CONVERSIONS, f"screen:{CONVERSION_RATE}",
       BUTTON_SESSIONS, BUTTON_CONVERSIONS, f"button:{CONVERSION_RATE}",
       FORMS_STARTED, FORMS_SUBMITTED, f"form:{COMPLETION_RATE}", "funnel:<name>")),
    KeyFamily(f"{_OFFERS}:campaign:<campaign id>", "hash"),
    *(KeyFamily(f"{_OFFERS}:{family}", "hash") for family in
      (OFFERS_MATCHED, OFFERS_SENT, OFFERS_HELD_OUT, OFFERS_SUPPRESSED, OFFERS_RULE_ERROR,
       OFFERS_REASONS, OFFERS_LATENCY)),
    KeyFamily(minute_key("cs", OFFERS, "<YYYY-MM-DDTHH:MM>"), "hash"),
    KeyFamily(series_key("cs", OFFERS), "stream"),
)  # fmt: skip
"""Every family, with the default prefix ``cs`` and ``<placeholders>`` as the docs write them."""
