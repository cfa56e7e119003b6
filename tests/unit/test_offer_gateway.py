"""The offers subscriber's logic: bounded dedupe memory and what counts as an offer."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offers.gateway import SeenOffers, decode_offer, send_at_seconds
from offers.records import OfferMessage, offer_id


def an_offer(**overrides: object) -> OfferMessage:
    fields: dict[str, object] = {
        "offer_id": offer_id("C1", "atm-decline-personal-loan", "e-1"),
        "campaign_id": "atm-decline-personal-loan",
        "campaign_version": 1,
        "customer_id": "C1",
        "channel": "sms",
        "phone": "+48500100200",
        "template": "{first_name}, a loan of {limit}",
        "params": {"limit": 10000},
        "text": "Anna, a loan of 10000",
        "trigger_event_id": "e-1",
        "trigger_time": "2026-11-25T08:00:00.000Z",
        "decided_at": "2026-11-25T08:00:00.040Z",
        "send_at": "2026-11-25T08:00:45.000Z",
    }
    fields.update(overrides)
    return OfferMessage(**fields)  # type: ignore[arg-type]


def test_an_offer_id_is_new_once() -> None:
    seen = SeenOffers(10)
    assert seen.add("a") is True
    assert seen.add("b") is True
    assert seen.add("a") is False
    assert len(seen) == 2


def test_memory_is_bounded_and_forgets_the_least_recently_seen_first() -> None:
    seen = SeenOffers(3)
    for offer in ("a", "b", "c"):
        seen.add(offer)
    seen.add("a")  # seen again: now the most recent
    seen.add("d")
    assert len(seen) == 3
    assert "b" not in seen
    assert all(offer in seen for offer in ("a", "c", "d"))
    assert seen.add("b") is True


@given(st.lists(st.sampled_from([f"o{i}" for i in range(30)]), max_size=200))
def test_within_its_capacity_it_agrees_with_a_plain_set(offers: list[str]) -> None:
    seen = SeenOffers(30)
    reference: set[str] = set()
    for offer in offers:
        assert seen.add(offer) is (offer not in reference)
        reference.add(offer)
    assert len(seen) == len(reference)


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        SeenOffers(0)


def test_an_offer_on_the_wire_decodes_back_to_itself() -> None:
    offer = an_offer()
    assert decode_offer(msgspec.json.encode(offer)) == (offer, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message (no value)"),
        (b"SMS: hello", "not JSON: "),
        (b'{"offer_id": "x"}', "not an offer: Object missing required field `campaign_id`"),
    ],
)
def test_what_is_not_an_offer_gets_a_reason(value: bytes | None, reason: str) -> None:
    offer, found = decode_offer(value)
    assert offer is None
    assert found is not None and found.startswith(reason)


def test_an_offer_of_another_schema_version_is_not_taken() -> None:
    value = msgspec.json.encode(an_offer(schema="bank-clickstream/offer/v2"))
    assert decode_offer(value) == (
        None,
        "schema 'bank-clickstream/offer/v2' is not 'bank-clickstream/offer/v1'",
    )


def test_send_at_is_read_as_utc() -> None:
    assert send_at_seconds(an_offer(send_at="1970-01-01T00:01:00.500Z")) == 60.5
