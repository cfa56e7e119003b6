"""Reading the core-banking extract's rows: consent, products, bad rows."""

from __future__ import annotations

import pytest

from state.customer_store import CustomerProfile, parse_consent, parse_row


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("y", True), ("false", False), ("No", False),
     ("0", False), ("", None), ("  ", None), (None, None)],
)  # fmt: skip
def test_consent_values(text: str | None, expected: bool | None) -> None:
    assert parse_consent(text) == (expected, True)


def test_an_unreadable_consent_is_a_bad_row_not_a_guess() -> None:
    assert parse_consent("maybe") == (None, False)
    reason = parse_row({"customer_id": "C1", "sms_consent": "maybe"})
    assert isinstance(reason, str) and "maybe" in reason


def test_a_row_without_customer_id_is_bad() -> None:
    assert parse_row({"customer_id": " ", "segment": "retail"}) == "customer_id is empty"


def test_products_and_extra_columns_are_kept() -> None:
    row = {
        "customer_id": "C1", "segment": "premium", "sms_consent": "yes", "phone": "+48500",
        "first_name": "Anna", "products": "current_account; credit_card;", "branch": "WAW1",
    }  # fmt: skip
    assert parse_row(row) == CustomerProfile(
        "C1", "premium", True, "+48500", "Anna", ("current_account", "credit_card"),
        {"branch": "WAW1"},
    )  # fmt: skip


def test_a_missing_segment_is_unknown() -> None:
    profile = parse_row({"customer_id": "C1"})
    assert isinstance(profile, CustomerProfile)
    assert (profile.segment, profile.sms_consent) == ("unknown", None)
