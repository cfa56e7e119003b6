"""Business events: what the core banking system, ATMs and branches report about customers.

Card payments (some abroad, a few declined), standing orders and direct debits booked without the
app, ATM withdrawals (some declined for insufficient funds, more often for students) and cash
operations at a branch teller. Transfers made in the app are booked by the journey that makes them
(see :mod:`sources.simulator.journeys`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

from sources.simulator.draws import Mix, below
from sources.simulator.messages import EventBodies, Properties, core_context, encode, money
from sources.simulator.population import SimulatedCustomer

_BUSINESS_EVENTS: Final = Mix(
    ("card_payment", 58), ("atm_withdrawal", 30), ("transfer", 9), ("branch", 3)
)
# How often an ATM withdrawal is declined for insufficient funds, by segment.
_ATM_DECLINE: Final = {
    "retail": 0.05,
    "premium": 0.02,
    "private": 0.01,
    "business": 0.03,
    "student": 0.09,
}
_ATM_AMOUNTS: Final = Mix(
    (50, 12), (100, 26), (200, 24), (300, 12), (400, 6), (500, 12), (1000, 6), (2000, 2)
)
_ATM_COUNT: Final = 3999
_CARD_ABROAD: Final = Mix(
    (("DE", "EUR"), 25),
    (("CZ", "CZK"), 15),
    (("ES", "EUR"), 15),
    (("IT", "EUR"), 12),
    (("HR", "EUR"), 10),
    (("GB", "GBP"), 13),
    (("US", "USD"), 10),
)
_MERCHANTS: Final = Mix(
    ("grocery", 34), ("fuel", 12), ("restaurant", 14), ("online", 22), ("travel", 6), ("other", 12)
)
_ABROAD_DECLINE_REASONS: Final = Mix(
    ("foreign_transaction_blocked", 55), ("insufficient_funds", 25), ("suspected_fraud", 20)
)
# Segments that travel: their cards are used abroad more often.
_TRAVELLING_SEGMENTS: Final = ("premium", "private")
_ABROAD_IF_TRAVELLING: Final = 0.15
_ABROAD_OTHERWISE: Final = 0.06
_ABROAD_DECLINED: Final = 0.14
_HOME_DECLINED: Final = 0.025
_CARD_PAYMENT_MAX: Final = 20_000.0
_CARD_PAYMENT_MU: Final = 3.8
_CARD_PAYMENT_SIGMA: Final = 1.0
_STANDING_ORDER_REJECTED: Final = 0.02
_STANDING_ORDER_MAX_PLN: Final = 50_000.0
_STANDING_ORDER_MU: Final = 6.0
_STANDING_ORDER_SIGMA: Final = 0.8
# Cash at a branch: a deposit this often, else a withdrawal, of 100 to 5000 PLN in hundreds.
_CASH_DEPOSIT: Final = 0.6
_CASH_STEP_PLN: Final = 100
_CASH_STEPS: Final = 50
_BRANCH_COUNT: Final = 599
# ATMs send no app fields (the contract makes them optional outside the app channels); branch
# tellers' terminals name theirs.
_BRANCH_TERMINAL: Final = (
    b'"app":"branch-teller","app_version":"12.4.0","os":"Windows","os_version":"11"'
)


class Transactions:
    """Writes business events for random customers, drawing from the traffic's generator."""

    def __init__(
        self, rng: random.Random, bodies: EventBodies, customers: Sequence[SimulatedCustomer]
    ) -> None:
        """Events about ``customers``, drawn from ``rng``, their bodies written by ``bodies``."""
        self.rng = rng
        self.bodies = bodies
        self.customers = customers

    def event(self) -> tuple[bytes, bytes]:
        """One event from the core banking system, an ATM or a branch, for a random customer.

        Returns:
            The event body and its message key (the customer id).
        """
        rng = self.rng
        customer = self.customers[below(rng, len(self.customers))]
        customer_id = customer.customer_id
        kind = _BUSINESS_EVENTS.pick(rng)
        properties: Properties
        if kind == "atm_withdrawal":
            declined = rng.random() < _ATM_DECLINE[customer.segment]
            properties = {"kind": kind, "status": "declined" if declined else "approved"}
            if declined:
                properties["reason"] = "insufficient_funds"
            properties["amount"] = _ATM_AMOUNTS.pick(rng)
            properties["currency"] = "PLN"
            properties["atm_id"] = f"ATM-{1 + below(rng, _ATM_COUNT):04d}"
            context = b'"channel":"atm","customer_id":' + encode(customer_id)
        elif kind == "card_payment":
            travels = customer.segment in _TRAVELLING_SEGMENTS
            if rng.random() < (_ABROAD_IF_TRAVELLING if travels else _ABROAD_OTHERWISE):
                country, currency = _CARD_ABROAD.pick(rng)
                declined = rng.random() < _ABROAD_DECLINED
                reason = _ABROAD_DECLINE_REASONS.pick(rng) if declined else None
            else:
                country, currency = "PL", "PLN"
                reason = "insufficient_funds" if rng.random() < _HOME_DECLINED else None
            properties = {"kind": kind, "status": "approved" if reason is None else "declined"}
            if reason is not None:
                properties["reason"] = reason
            amount = rng.lognormvariate(_CARD_PAYMENT_MU, _CARD_PAYMENT_SIGMA)
            properties["amount"] = money(min(_CARD_PAYMENT_MAX, amount))
            properties["currency"] = currency
            properties["country"] = country
            properties["merchant_category"] = _MERCHANTS.pick(rng)
            context = core_context(customer_id)
        elif kind == "transfer":
            # Standing orders and direct debits: booked without anyone opening the app.
            rejected = rng.random() < _STANDING_ORDER_REJECTED
            amount = rng.lognormvariate(_STANDING_ORDER_MU, _STANDING_ORDER_SIGMA)
            properties = {
                "kind": kind,
                "status": "rejected" if rejected else "completed",
                "amount": money(min(_STANDING_ORDER_MAX_PLN, amount)),
                "currency": "PLN",
                "transfer_type": "standing_order",
            }
            if rejected:
                properties["reason"] = "insufficient_funds"
            context = core_context(customer_id)
        else:
            deposit = rng.random() < _CASH_DEPOSIT
            properties = {
                "kind": "cash_deposit" if deposit else "cash_withdrawal",
                "status": "approved",
                "amount": _CASH_STEP_PLN * (1 + below(rng, _CASH_STEPS)),
                "currency": "PLN",
                "branch_id": f"B{1 + below(rng, _BRANCH_COUNT):03d}",
            }
            context = b'"channel":"branch","customer_id":%s,%s' % (
                encode(customer_id),
                _BRANCH_TERMINAL,
            )
        body = self.bodies.event("transaction", context, properties=properties)
        return body, customer_id.encode()
