"""Mutated messages: valid events bent, broken, truncated, oversized and mistyped.

One engine driven by a :class:`random.Random`, so that hypothesis (through ``st.randoms``) and a
seeded 100k-message run make the same kinds of messages. Whether each one is valid is for
:func:`tests.support.reference.is_valid` to say, not for the mutation.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.reference import CHANNELS, LIMIT, TYPES

BASE = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
FIELDS = ("event_id", "event_time", "event_type", "channel", "customer_id", "device_id", "app",
          "app_version", "os", "os_version", "screen", "element", "form", "properties")  # fmt: skip
_WEIRD_TEXT = ("", " ", "é", "żółć", "日本", "🙂", "\u0000", "\u200b", "a" * 129, "null", "0",
               "\\", '"', "\ud7ff", "\ue000", "C1\nC2")  # fmt: skip


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_WEIRD_TEXT)
    return "".join(chr(rng.choice((rng.randint(32, 126), rng.randint(0xA0, 0x2FFF))))
                   for _ in range(rng.randint(0, 20)))  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 2 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return rng.choice((0, -1, 1, 2**31, 2**63, 10**30, rng.randint(-(10**6), 10**6)))
    if kind == 3:
        return rng.choice((0.5, -0.0, 1e308, 3.14159, rng.random()))
    if kind == 4:
        return _text(rng)
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _time(rng: random.Random, moment: datetime) -> Any:
    choice = rng.randint(0, 9)
    if choice == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ").replace("Z", "z")
    if choice == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")  # no offset
    if choice == 2:
        return moment.strftime("%Y-%m-%d")
    if choice == 3:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if choice == 4:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123+02:00"
    if choice == 5:
        return rng.choice(("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z",
                           "2026-01-15T24:00:00Z", "2026-01-15T08:00:60Z"))  # fmt: skip
    if choice == 6:
        return _value(rng)
    return moment.isoformat()


def valid_event(rng: random.Random, n: int) -> dict[str, Any]:
    """A valid event (its ids from a small pool, so that some repeat)."""
    channel = rng.choice(sorted(CHANNELS))
    event: dict[str, Any] = {
        "event_id": f"e{rng.randint(0, n)}",
        "event_time": (BASE + timedelta(seconds=rng.randint(0, 86_400))).isoformat(),
        "event_type": rng.choice(sorted(TYPES)),
        "channel": channel,
        "customer_id": rng.choice((None, f"C{rng.randint(0, 50)}")),
        "device_id": f"D{rng.randint(0, 50)}",
    }
    if channel in ("mobile", "web") or rng.random() < 0.3:
        event.update(app="app", app_version="1.0", os="Android", os_version="14")
    if rng.random() < 0.5:
        event["screen"] = rng.choice(("dashboard", "transfer", "loan_application"))
    if rng.random() < 0.3:
        event["properties"] = {"amount": rng.randint(1, 5000), "currency": "PLN"}
    return event


def mutated(rng: random.Random, n: int = 1000) -> bytes:
    """One message: a valid event, or one bent or broken in one of many ways."""
    event = valid_event(rng, n)
    kind = rng.randint(0, 11)
    if kind == 1:  # a field of the wrong type, or an odd value of the right one
        event[rng.choice(FIELDS)] = _value(rng)
    elif kind == 2:  # a field missing
        event.pop(rng.choice(FIELDS), None)
    elif kind == 3:  # odd text where text goes
        event[rng.choice(FIELDS[:13])] = _text(rng)
    elif kind == 4:
        event["event_time"] = _time(rng, BASE + timedelta(seconds=rng.randint(0, 86_400)))
    elif kind == 5:  # properties of every shape
        event["properties"] = {_text(rng): _value(rng) for _ in range(rng.randint(0, 4))}
    elif kind == 6:  # oversized, or just under the limit
        event["properties"] = {"pad": "x" * (LIMIT - rng.randint(-50, 400))}
    elif kind == 7:  # an unknown field (tolerated by the contract)
        event[_text(rng) or "extra"] = _value(rng)
    value = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()
    if kind == 8:  # truncated
        value = value[: rng.randint(0, len(value) - 1)]
    elif kind == 9:  # invalid UTF-8 somewhere
        at = rng.randint(0, len(value))
        value = (
            value[:at] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80")) + value[at:]
        )
    elif kind == 10:  # not an object at all
        value = rng.choice((b"", b"null", b"[]", b"42", b'"text"', b"{", rng.randbytes(20)))
    elif kind == 11:  # the same key twice (the last one wins, as in Python)
        value = value[:-1] + b', "channel": "' + rng.choice(sorted(CHANNELS)).encode() + b'"}'
    return value
