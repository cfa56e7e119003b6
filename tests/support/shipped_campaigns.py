"""The shipped campaigns (``campaigns/*.py``) restated for the offers reference: what each
matches, what counts as its conversion, its delay, cooldown, cap, control share and priority."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.offers_reference import CampaignSpec

LOAN_FORM = "loan_application_form"


def _products(customer: dict[str, str]) -> list[str]:
    return customer.get("products", "").split(";")


def _atm_decline(event: dict[str, Any], customer: dict[str, str]) -> bool:
    props = event.get("properties", {})
    return (
        event["event_type"] == "transaction"
        and event["channel"] == "atm"
        and props.get("kind") == "atm_withdrawal"
        and props.get("status") == "declined"
        and props.get("reason") == "insufficient_funds"
        and "personal_loan" not in _products(customer)
    )


def _rejected_transfer(event: dict[str, Any], customer: dict[str, str]) -> bool:
    props = event.get("properties", {})
    return (
        event["event_type"] == "transaction"
        and event["channel"] == "core"
        and props.get("kind") == "transfer"
        and props.get("status") == "rejected"
        and props.get("reason") == "insufficient_funds"
        and "overdraft" not in _products(customer)
    )


def _loan_form_started(event: dict[str, Any], customer: dict[str, str]) -> bool:
    return (
        event["event_type"] == "form_start"
        and event.get("form") == LOAN_FORM
        and "personal_loan" not in _products(customer)
    )


def _conversion(event: dict[str, Any]) -> bool:
    return bool(event["event_type"] == "conversion")


def _loan_done(event: dict[str, Any]) -> bool:
    submitted = event["event_type"] == "form_submit" and event.get("form") == LOAN_FORM
    return submitted or _conversion(event)


# The shipped campaigns' declarations, restated (campaigns/*.py).
SPECS = [
    CampaignSpec("atm-decline-personal-loan", _atm_decline, _conversion,
                 timedelta(seconds=45), timedelta(days=30), 1, 0.10, priority=90),
    CampaignSpec("rejected-transfer-overdraft", _rejected_transfer, _conversion,
                 timedelta(minutes=1), timedelta(days=30), 1, 0.10, priority=85),
    CampaignSpec("abandoned-loan-callback", _loan_form_started, _loan_done,
                 timedelta(minutes=20), timedelta(days=7), 1, 0.10, priority=70),
]  # fmt: skip
