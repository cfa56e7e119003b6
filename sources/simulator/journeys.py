"""Journey scripts: what people do in the banking apps, step by step.

A journey starts anonymous on a device, usually logs in, moves across screens to do a task or two
(check accounts, make a transfer, change a card's settings, browse offers, apply for a loan, read
help), fills in forms and often abandons them, converts, and hits errors now and then. Which task a
customer comes for depends on their segment.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Final, Literal

from sources.simulator.draws import Mix, below
from sources.simulator.messages import EventBodies, Properties, app_context, core_context, money
from sources.simulator.population import SimulatedCustomer, new_device
from sources.simulator.visits import Step, Visit, form_ms, quick_ms, think_ms

Goal = Callable[[Visit, SimulatedCustomer], Iterator[Step]]
"""A task a logged-in customer comes to do, as the steps of a visit."""

# Share of customers' journeys that never log in (browse the offers, read help, give up at login).
_STAY_ANONYMOUS: Final = 0.10
_OFFER_PRODUCTS: Final = Mix(
    ("credit_card", 35), ("savings_account", 25), ("travel_insurance", 15), ("overdraft", 25)
)
_LOAN_AMOUNTS: Final = Mix(
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
# A transfer made in the app: at most this much PLN, drawn from a log-normal distribution.
_APP_TRANSFER_MAX_PLN: Final = 50_000.0
_APP_TRANSFER_MU: Final = 5.3
_APP_TRANSFER_SIGMA: Final = 1.1


class Journeys:
    """Writes journeys as steps, drawing from the traffic's generator."""

    def __init__(self, rng: random.Random, bodies: EventBodies) -> None:
        """Journeys drawn from ``rng`` (the traffic's), their events written by ``bodies``."""
        self.rng = rng
        self.bodies = bodies
        tasks: tuple[Goal, ...] = (
            self._check_accounts,
            self._transfer,
            self._cards,
            self._offers,
            self._loan,
            self._help,
        )
        self.goals = {
            segment: Mix(*zip(tasks, weights, strict=True))
            for segment, weights in _GOAL_WEIGHTS.items()
        }

    def journey(self, customer: SimulatedCustomer | None) -> Iterator[Step]:
        """One visit to an app: anonymous first, then (usually) a login and a task or two.

        Args:
            customer: who visits; None is a prospect on a device the bank has never seen.

        Yields:
            The visit's steps; the first has no gap.
        """
        rng = self.rng
        if customer is None:
            channel: Literal["mobile", "web"] = "mobile" if rng.random() < 0.6 else "web"
            device = new_device(rng, channel)
        elif len(customer.devices) == 1 or rng.random() < 0.65:
            device = customer.devices[0]
        else:
            device = customer.devices[1]
        visit = Visit(rng, self.bodies, app_context(device, None), device.device_id.encode())
        yield visit.view("splash" if device.channel == "mobile" else "home", 0)
        if customer is None or rng.random() < _STAY_ANONYMOUS:
            yield from self._browse_anonymously(visit)
            return
        yield from visit.arrive("login", quick_ms(rng))
        if rng.random() < 0.06:
            yield visit.error("E_AUTH_FAILED", think_ms(rng))
            if rng.random() < 0.35:
                return  # gave up at login
        # From the login on, the app knows the customer: events carry the customer id and are
        # keyed by it.
        visit.context = app_context(device, customer.customer_id)
        visit.key = customer.customer_id.encode()
        yield visit.plain("login", "btn_login", think_ms(rng))
        yield from visit.arrive("dashboard", quick_ms(rng))
        goals = self.goals[customer.segment]
        for task in range(2 if rng.random() < 0.3 else 1):
            if task and visit.screen != "dashboard":
                yield from visit.press("btn_home", think_ms(rng))
                yield from visit.arrive("dashboard", quick_ms(rng))
            yield from goals.pick(rng)(visit, customer)
            if visit.over:
                return
        if rng.random() < 0.4:
            yield from visit.press("btn_logout", think_ms(rng))
            yield visit.plain("logout", None, quick_ms(rng))

    def _browse_anonymously(self, visit: Visit) -> Iterator[Step]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            yield from visit.arrive("offers", think_ms(rng))
            yield from visit.press(f"offer_{_OFFER_PRODUCTS.pick(rng)}", think_ms(rng))
            if rng.random() < 0.4:
                yield from visit.arrive("help", quick_ms(rng))
        elif roll < 0.8:
            yield from visit.arrive("login", quick_ms(rng))
            if rng.random() < 0.3:
                yield visit.error("E_AUTH_FAILED", think_ms(rng))
        else:
            yield from visit.arrive("help", think_ms(rng))
            for _ in range(1 + below(rng, 3)):
                yield from visit.press("faq_item", think_ms(rng))

    def _check_accounts(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("accounts", think_ms(rng))
        for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):
            yield from visit.press("account_row", think_ms(rng))
            yield from visit.arrive("account_details", quick_ms(rng))
            if rng.random() < 0.2:
                yield from visit.press("btn_download_statement", think_ms(rng))
            yield from visit.press("btn_back", think_ms(rng))
            yield from visit.arrive("accounts", quick_ms(rng))

    def _transfer(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("transfer", think_ms(rng))
        yield visit.form("form_start", "transfer_form", quick_ms(rng))
        yield from visit.press("btn_continue", form_ms(rng))
        if rng.random() < 0.14:
            yield from visit.press("btn_back", think_ms(rng))
            yield from visit.arrive("dashboard", quick_ms(rng))
            return
        yield from visit.arrive("transfer_confirm", quick_ms(rng))
        yield from visit.press("btn_submit", think_ms(rng))
        if rng.random() < 0.05:
            yield visit.error("E_OTP_FAILED", quick_ms(rng))
            if rng.random() < 0.5:
                visit.over = True
                return
            yield from visit.press("btn_submit", think_ms(rng))
        yield visit.form("form_submit", "transfer_form", quick_ms(rng))
        # The core banking system books the transfer a moment later.
        amount = rng.lognormvariate(_APP_TRANSFER_MU, _APP_TRANSFER_SIGMA)
        properties: Properties = {
            "kind": "transfer",
            "status": "completed",
            "amount": money(min(_APP_TRANSFER_MAX_PLN, amount)),
            "currency": "PLN",
            "transfer_type": "instant" if rng.random() < 0.3 else "domestic",
        }
        booked = self.bodies.event(
            "transaction", core_context(customer.customer_id), properties=properties
        )
        yield quick_ms(rng), booked, visit.key
        yield from visit.arrive("dashboard", quick_ms(rng))

    def _loan(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("offers", think_ms(rng))
        yield from visit.press("offer_personal_loan", think_ms(rng))
        yield from visit.arrive("loan_application", quick_ms(rng))
        yield visit.form("form_start", "loan_application_form", quick_ms(rng))
        for _ in range(1 + below(rng, 3)):
            yield from visit.press("btn_continue", form_ms(rng))
        if rng.random() < 0.45:
            yield from visit.press("btn_submit", form_ms(rng))
            yield visit.form("form_submit", "loan_application_form", quick_ms(rng))
            yield visit.conversion("personal_loan", quick_ms(rng), _LOAN_AMOUNTS.pick(rng))
            return
        # Abandoned: most often the customer simply leaves on the application screen.
        if rng.random() < 0.3:
            yield visit.error("E_VALIDATION", quick_ms(rng))
        if rng.random() < 0.75:
            visit.over = True
            return
        yield from visit.press("btn_back", think_ms(rng))
        yield from visit.arrive("dashboard", quick_ms(rng))

    def _cards(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("cards", think_ms(rng))
        yield from visit.press("card_tile", think_ms(rng))
        yield from visit.arrive("card_settings", quick_ms(rng))
        if rng.random() < 0.4:
            yield from visit.press("toggle_online_payments", think_ms(rng))
            return
        yield visit.form("form_start", "card_limit_form", quick_ms(rng))
        if rng.random() < 0.75:
            yield from visit.press("btn_submit", form_ms(rng))
            yield visit.form("form_submit", "card_limit_form", quick_ms(rng))
        else:
            yield from visit.press("btn_back", form_ms(rng))
        yield from visit.arrive("cards", quick_ms(rng))

    def _offers(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("offers", think_ms(rng))
        product = _OFFER_PRODUCTS.pick(rng)
        yield from visit.press(f"offer_{product}", think_ms(rng))
        if rng.random() < 0.12:
            yield from visit.press("btn_apply", think_ms(rng))
            yield visit.conversion(product, quick_ms(rng))
        else:
            yield from visit.press("btn_back", think_ms(rng))

    def _help(self, visit: Visit, customer: SimulatedCustomer) -> Iterator[Step]:
        rng = self.rng
        yield from visit.arrive("help", think_ms(rng))
        for _ in range(1 + below(rng, 3)):
            yield from visit.press("faq_item", think_ms(rng))
        if rng.random() < 0.2:
            yield from visit.press("btn_contact_consultant", think_ms(rng))
