"""Every rule of the event contract v1, valid and invalid, through the batch decoder."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from operators.decode import BatchDecoder, shard_name
from state.records import RawMessage

VALID: dict[str, Any] = {
    "event_id": "e-1",
    "event_time": "2026-01-15T08:00:00.123+01:00",
    "event_type": "screen_view",
    "customer_id": None,
    "device_id": "D-1",
    "channel": "mobile",
    "app": "mobile-banking",
    "app_version": "5.2.0",
    "os": "Android",
    "os_version": "14",
    "screen": "login",
    "properties": {"kind": "x", "amount": 12.5, "count": 3, "flag": True},
}


def decode_one(value: bytes, limit: int = 16_384) -> tuple[list[Any], list[Any]]:
    decoder = BatchDecoder(shard_count=8, max_event_bytes=limit)
    result = decoder.decode([RawMessage("bank.events", 2, 41, value, b"key")])
    events = [a for batch in result.by_shard.values() for a in batch]
    return events, result.dead_letters


def encode(**changes: Any) -> bytes:
    event = dict(VALID)
    for name, value in changes.items():
        if value is ...:
            event.pop(name)
        else:
            event[name] = value
    return json.dumps(event).encode()


def test_a_valid_event_is_accepted_with_its_position_and_utc_time() -> None:
    events, dead = decode_one(encode())
    assert dead == []
    [arrival] = events
    assert arrival.event.event_id == "e-1"
    assert arrival.event.properties == {"kind": "x", "amount": 12.5, "count": 3, "flag": True}
    assert (arrival.source, arrival.partition, arrival.offset) == ("bank.events", 2, 41)
    assert arrival.event_ms == int(datetime(2026, 1, 15, 7, 0, 0, 123000, UTC).timestamp() * 1000)


ALL_TYPES = ["screen_view", "click", "form_start", "form_submit", "login", "logout",
             "conversion", "error", "transaction"]  # fmt: skip


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_event_type_of_the_contract_is_accepted(event_type: str) -> None:
    events, dead = decode_one(encode(event_type=event_type))
    assert dead == [] and len(events) == 1


@pytest.mark.parametrize("channel", ["mobile", "web", "atm", "branch", "core"])
def test_every_channel_of_the_contract_is_accepted(channel: str) -> None:
    events, dead = decode_one(encode(channel=channel))
    assert dead == [] and len(events) == 1


@pytest.mark.parametrize("channel", ["atm", "branch", "core"])
def test_machine_and_back_office_events_need_no_app_fields(channel: str) -> None:
    events, dead = decode_one(
        encode(channel=channel, app=..., app_version=..., os=..., os_version=..., screen=...)
    )
    assert dead == [] and len(events) == 1
    assert events[0].event.app is None and events[0].event.os is None


@pytest.mark.parametrize("channel", ["mobile", "web"])
@pytest.mark.parametrize("field", ["app", "app_version", "os", "os_version"])
def test_an_app_event_without_an_app_field_is_a_dead_letter_naming_it(
    channel: str, field: str
) -> None:
    events, dead = decode_one(encode(channel=channel, **{field: ...}))
    assert events == []
    assert dead[0].error_type == "ContractViolation"
    assert dead[0].reason == f"{field} required for channel {channel!r}"


def test_a_logged_in_event_needs_no_device() -> None:
    events, dead = decode_one(encode(customer_id="C1", device_id=...))
    assert dead == [] and events[0].event.customer_id == "C1"


def test_an_event_id_of_128_characters_is_accepted() -> None:
    events, dead = decode_one(encode(event_id="x" * 128))
    assert dead == [] and len(events) == 1


INVALID = [
    ("not json", b"{not json", "decode", "InvalidJson", "not valid JSON"),
    ("not an object", b'[{"event_id": "e"}]', "validate", "ContractViolation", "Expected `object`"),
    ("missing event_id", encode(event_id=...), "validate", "ContractViolation", "event_id"),
    ("empty event_id", encode(event_id=""), "validate", "ContractViolation", "event_id"),
    ("event_id too long", encode(event_id="x" * 129), "validate", "ContractViolation", "event_id"),
    ("event_id not a string", encode(event_id=7), "validate", "ContractViolation", "event_id"),
    ("missing event_time", encode(event_time=...), "validate", "ContractViolation", "event_time"),
    ("unparsable event_time", encode(event_time="yesterday"), "validate", "ContractViolation",
     "event_time"),
    ("event_time without offset", encode(event_time="2026-01-15T08:00:00"), "validate",
     "ContractViolation", "event_time"),
    ("unknown event_type", encode(event_type="purchase"), "validate", "ContractViolation",
     "event_type"),
    ("missing event_type", encode(event_type=...), "validate", "ContractViolation", "event_type"),
    ("unknown channel", encode(channel="fax"), "validate", "ContractViolation", "channel"),
    ("missing channel", encode(channel=...), "validate", "ContractViolation", "channel"),
    ("no customer and no device", encode(customer_id=None, device_id=...), "validate",
     "ContractViolation", "customer_id and device_id are both missing"),
    ("empty device id", encode(device_id=""), "validate", "ContractViolation", "device_id"),
    ("customer_id a number", encode(customer_id=12), "validate", "ContractViolation",
     "customer_id"),
    ("mobile event without os", encode(os=...), "validate", "ContractViolation", "os required"),
    ("screen not a string", encode(screen=["a"]), "validate", "ContractViolation", "screen"),
    ("nested properties", encode(properties={"a": {"b": 1}}), "validate", "ContractViolation",
     "properties"),
    ("properties a list", encode(properties=[1]), "validate", "ContractViolation", "properties"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "value", "stage", "error_type", "reason"), INVALID)
def test_an_invalid_message_becomes_a_dead_letter_with_a_reason(
    case: str, value: bytes, stage: str, error_type: str, reason: str
) -> None:
    events, dead = decode_one(value)
    assert events == [], case
    [letter] = dead
    assert (letter.stage, letter.error_type) == (stage, error_type)
    assert reason in letter.reason
    assert letter.original == value
    assert (letter.source, letter.partition, letter.offset, letter.key) == (
        "bank.events", 2, 41, b"key",
    )  # fmt: skip


def test_a_message_over_the_size_limit_is_a_dead_letter() -> None:
    value = encode(properties={"note": "x" * 400})
    events, dead = decode_one(value, limit=300)
    assert events == []
    assert dead[0].error_type == "TooLarge"
    assert f"{len(value)} bytes, over the limit of 300" in dead[0].reason


def test_a_consumer_error_and_an_empty_message_are_dead_letters() -> None:
    decoder = BatchDecoder(shard_count=8, max_event_bytes=1000)
    result = decoder.decode(
        [
            RawMessage("t", 0, 1, b"x", error="Broker: Message size too large"),
            RawMessage("t", 0, 2, None),
        ]
    )
    assert [(d.stage, d.error_type) for d in result.dead_letters] == [
        ("consume", "KafkaError"),
        ("decode", "EmptyMessage"),
    ]


def test_non_utf8_bytes_are_kept_exactly() -> None:
    value = b"\xff\xfe\x00garbage"
    _, dead = decode_one(value)
    assert dead[0].original == value and dead[0].original_text is None


def test_a_bad_message_does_not_stop_the_rest_of_the_batch() -> None:
    decoder = BatchDecoder(shard_count=4, max_event_bytes=16_384)
    batch = [RawMessage("t", 0, i, encode(event_id=f"e{i}")) for i in range(5)]
    batch.insert(2, RawMessage("t", 0, 99, b"oops"))
    result = decoder.decode(batch)
    accepted = sorted(a.event.event_id for b in result.by_shard.values() for a in b)
    assert accepted == [f"e{i}" for i in range(5)]
    assert len(result.dead_letters) == 1


def test_events_are_grouped_by_a_stable_shard_of_device_else_customer() -> None:
    decoder = BatchDecoder(shard_count=16, max_event_bytes=16_384)
    batch = [
        RawMessage("t", 0, 0, encode(event_id="a", customer_id="C42", device_id="D1")),
        RawMessage("t", 0, 1, encode(event_id="b", customer_id=None, device_id="D1")),
        RawMessage("t", 0, 2, encode(event_id="c", channel="core", customer_id="C42",
                                     device_id=..., app=..., app_version=..., os=...,
                                     os_version=...)),
    ]  # fmt: skip
    result = decoder.decode(batch)
    # CRC-32 of the id: the same shard in every process, unlike Python's salted hash().
    device_shard = shard_name(zlib.crc32(b"D1") % 16)
    customer_shard = shard_name(zlib.crc32(b"C42") % 16)
    assert device_shard != customer_shard  # else the test could not tell device from customer
    assert sorted(result.by_shard) == sorted([device_shard, customer_shard])
    # A device's logged-in and anonymous events meet in one shard, so they can be stitched.
    assert [a.event.event_id for a in result.by_shard[device_shard]] == ["a", "b"]
    assert [a.event.event_id for a in result.by_shard[customer_shard]] == ["c"]


def test_a_sources_marks_are_no_events_and_no_dead_letters() -> None:
    from state.records import idle_mark, lag_mark

    event = RawMessage("bank.events", 2, 41, encode())
    marks = [lag_mark("bank.events", 2, 42, 1500), event, idle_mark("bank.events", 3, 9)]
    decoded = BatchDecoder(16, 16_384).decode(marks)
    assert sum(len(v) for v in decoded.by_shard.values()) == 1
    assert decoded.dead_letters == []
    assert decoded.lag == {"bank.events#2": 1500}
    assert decoded.idle == ("bank.events#3",)
