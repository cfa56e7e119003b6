"""Running marketing's campaign rules: a time budget per call, and a failure as an answer.

A rule is code marketing writes (docs/campaigns.md). It may raise, run too long or return a
template the profile cannot fill; each of those is a ``rule_error`` decision about that match,
never a crash of the job, and the other campaigns of the event are decided as usual.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import msgspec

from offers.api import PROFILE_FIELDS, Campaign, as_params
from offers.history import History
from offers.records import RULE_RAISED, RULE_TIMEOUT
from state.contract import Event
from state.customer_store import CustomerProfile


class RuleTimeoutError(Exception):
    """Raised inside a rule that ran past its time budget."""


class Match(msgspec.Struct, frozen=True, gc=False):
    """A campaign whose rule answered with an offer, and the offer's text."""

    campaign: Campaign
    params: dict[str, Any]
    text: str


class RuleError(msgspec.Struct, frozen=True, gc=False):
    """A rule that raised, ran too long or returned parameters its template cannot use."""

    reason: str
    """``rule_raised`` or ``rule_timeout``."""
    detail: str


class _Alarm:
    """The process's one SIGALRM handler: it interrupts the rule that armed it, if any."""

    armed = False
    installed = False

    @classmethod
    def install(cls) -> bool:
        """Install the handler (on the main thread only); True when rules can be interrupted."""
        if not hasattr(signal, "setitimer"):
            return False
        if threading.current_thread() is not threading.main_thread():
            return cls.installed
        if signal.getsignal(signal.SIGALRM) != cls._on_alarm:
            signal.signal(signal.SIGALRM, cls._on_alarm)
            cls.installed = True
        return True

    @classmethod
    def _on_alarm(cls, _signum: int, _frame: object) -> None:
        if cls.armed:
            raise RuleTimeoutError


class RuleRunner:
    """Runs a campaign's rule with a time budget, and renders the offer's text.

    On the main thread (a single-worker job) a SIGALRM timer interrupts a rule that runs too
    long; on other threads the time is checked afterwards (the answer is discarded the same).
    """

    def __init__(self, timeout_ms: int) -> None:
        """Runner with the given budget per call."""
        self._timeout_s = timeout_ms / 1000
        self._timer = _Alarm.install()

    def prepare(self) -> None:
        """Before a batch of rules: make sure the timer's handler is (still) ours."""
        self._timer = _Alarm.install()

    def ask(
        self, campaign: Campaign, event: Event, profile: CustomerProfile, history: History
    ) -> Match | RuleError | None:
        """The campaign's answer to one event.

        Args:
            campaign: the campaign whose trigger matched the event.
            event: the trigger.
            profile: the customer's profile.
            history: the customer's recent events before the trigger.

        Returns:
            The offer with its text; None when the rule makes no offer; a :class:`RuleError`
            when the rule raised, ran over its budget or its template cannot be filled.
        """
        timer = self._timer
        started = time.perf_counter()
        try:
            if timer:
                _Alarm.armed = True
                signal.setitimer(signal.ITIMER_REAL, self._timeout_s)
            try:
                answer = campaign.rule(event, profile, history)
            finally:
                _Alarm.armed = False
                if timer:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if time.perf_counter() - started > self._timeout_s:
                raise RuleTimeoutError
            params = as_params(answer)
        except RuleTimeoutError:
            return RuleError(RULE_TIMEOUT, f"the rule ran over {self._timeout_s * 1000:.0f} ms")
        except Exception as exc:  # a rule's failure is a decision, not a crash
            return RuleError(RULE_RAISED, f"{type(exc).__name__}: {exc}"[:500])
        if params is None:
            return None
        # A profile field the extract leaves empty renders as nothing.
        values = {name: getattr(profile, name) or "" for name in PROFILE_FIELDS}
        values.update(params)
        try:
            text = _tidy(campaign.render(values))
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            return RuleError(RULE_RAISED, f"template: {type(exc).__name__}: {exc}")
        return Match(campaign, params, text)


def _tidy(text: str) -> str:
    """A text whose opening placeholder was empty (``", short of cash?"``) starts cleanly."""
    trimmed = text.lstrip(" ,;:-")
    return trimmed[:1].upper() + trimmed[1:] if trimmed != text else text
