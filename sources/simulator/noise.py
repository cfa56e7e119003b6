"""Noise on request: duplicates, late events and malformed messages, as real producers make them.

Noise draws from a generator of its own (seeded ``noise:<seed>``), so turning noise on never
changes the valid events themselves.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import datetime
from typing import Final

import msgspec

from sources.simulator.clock import parse_ms
from sources.simulator.config import SimulationConfig
from sources.simulator.messages import SimulatedMessage, encode

OVERSIZE_BYTES: Final = 16_384
"""The job's default event size limit; an oversize malformed message is larger than this."""

MALFORMATIONS: Final = (
    "not_json",
    "json_array",
    "missing_event_id",
    "wrong_type",
    "unknown_event_type",
    "no_identity",
    "bad_event_time",
    "oversize",
    "nested_properties",
)
"""The ways a malformed message breaks the event contract, drawn evenly."""

# A duplicate is re-emitted 3 to 300 messages after its original.
_DUPLICATE_AFTER_MIN: Final = 3
_DUPLICATE_AFTER_SPREAD: Final = 298
# A late event lags at least a second (or ``late_max_s`` if that is less).
_LATE_MIN_MS: Final = 1000
_WRONG_TYPE_FIELDS: Final = 3
_UNKNOWN_EVENT_TYPES: Final = ("page_view", "swipe", "purchase", "Click")
_LOCAL_TIME_SHARE: Final = 0.5
_STACK_FRAME: Final = (
    "at pl.bank.mobile.transfer.TransferViewModel.submit(TransferViewModel.kt:214)\n"
)
_NESTED_DEVICE: Final = {"model": "Pixel 8", "battery": 54, "rooted": False}


class Noise:
    """The noise of one run: what it holds back, what it will repeat, what it breaks."""

    def __init__(self, config: SimulationConfig) -> None:
        """The noise ``config`` asks for, drawn from its own generator."""
        self.rng = random.Random(f"noise:{config.seed}")
        self.duplicate_rate = config.duplicate_rate
        self.malformed_rate = config.malformed_rate
        self.late_rate = config.late_rate
        self.late_max_ms = max(1, int(config.late_max_s * 1000))
        self.late_min_ms = min(_LATE_MIN_MS, self.late_max_ms)
        # Whether emitted messages may be followed by noise (duplicates, malformed messages).
        self.follows_messages = config.duplicate_rate > 0 or config.malformed_rate > 0
        # Duplicates waiting to be re-emitted: (message number, tie-break, key, value).
        self.duplicates: list[tuple[int, int, bytes | None, bytes]] = []
        # Late events held back: (release time in ms, tie-break, key, value).
        self.held_late: list[tuple[int, int, bytes | None, bytes]] = []
        self._held = 0

    def holds_back(self, now: int, key: bytes | None, value: bytes) -> bool:
        """Whether the event at ``now`` comes late; if so it is held until :meth:`late_due`.

        Args:
            now: the event's time in ms.
            key: its message key.
            value: its bytes.

        Returns:
            True if the event is held back (the caller does not emit it now).
        """
        rng = self.rng
        if self.late_rate and rng.random() < self.late_rate:
            self._held += 1
            lag = rng.randint(self.late_min_ms, self.late_max_ms)
            heapq.heappush(self.held_late, (now + lag, self._held, key, value))
            return True
        return False

    def late_due(self, now: int | None) -> Iterator[tuple[bytes | None, bytes]]:
        """The held-back events due by ``now`` (all of them when None), oldest release first.

        Args:
            now: the clock in ms, or None at the end of the run.

        Yields:
            Each event's key and bytes.
        """
        held_late = self.held_late
        while held_late and (now is None or held_late[0][0] <= now):
            _, _, key, value = heapq.heappop(held_late)
            yield key, value

    def after(self, key: bytes | None, value: bytes, emitted: int) -> Iterator[SimulatedMessage]:
        """Schedule a duplicate of a just-emitted event, and maybe follow it by a malformed one.

        Args:
            key: the event's message key.
            value: its bytes.
            emitted: the number of messages emitted so far, this one included.

        Yields:
            A malformed message, sometimes.
        """
        rng = self.rng
        if self.duplicate_rate and rng.random() < self.duplicate_rate:
            release_at = emitted + _DUPLICATE_AFTER_MIN + rng.randrange(_DUPLICATE_AFTER_SPREAD)
            heapq.heappush(self.duplicates, (release_at, emitted, key, value))
        if self.malformed_rate and rng.random() < self.malformed_rate:
            yield self.malformed(key, value)

    def due_duplicates(self, emitted: int | None) -> Iterator[SimulatedMessage]:
        """Duplicates due at message number ``emitted`` (all of them when None).

        Args:
            emitted: the number of messages emitted so far, or None at the end of the run.

        Yields:
            The duplicates, byte for byte and key for key their originals.
        """
        duplicates = self.duplicates
        while duplicates and (emitted is None or duplicates[0][0] <= emitted):
            _, _, key, value = heapq.heappop(duplicates)
            yield SimulatedMessage(key, value, "duplicate")

    def malformed(self, key: bytes | None, value: bytes) -> SimulatedMessage:
        """A message that breaks the event contract, made from a valid event the way producers
        really get it wrong.

        Args:
            key: the valid event's message key.
            value: its bytes.

        Returns:
            The malformed message (without a key if it lost its identity).
        """
        rng = self.rng
        malformation = MALFORMATIONS[rng.randrange(len(MALFORMATIONS))]
        if malformation == "not_json":
            # Cut short: a producer crashed mid-write, or a proxy truncated the body.
            return SimulatedMessage(key, value[: 1 + rng.randrange(len(value) - 2)], "malformed")
        if malformation == "json_array":
            return SimulatedMessage(key, b"[" + value + b"]", "malformed")
        event: dict[str, object] = msgspec.json.decode(value)
        properties = event.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        if malformation == "missing_event_id":
            del event["event_id"]
        elif malformation == "wrong_type":
            wrong_field = rng.randrange(_WRONG_TYPE_FIELDS)
            if wrong_field == 0:
                event["event_time"] = parse_ms(str(event["event_time"]))
            elif wrong_field == 1:
                event["channel"] = 2
            else:
                event["properties"] = "kind=unknown;source=legacy"
        elif malformation == "unknown_event_type":
            event["event_type"] = _UNKNOWN_EVENT_TYPES[rng.randrange(len(_UNKNOWN_EVENT_TYPES))]
        elif malformation == "no_identity":
            event.pop("customer_id", None)
            event.pop("device_id", None)
            key = None
        elif malformation == "bad_event_time":
            event_time = str(event["event_time"])
            event["event_time"] = (
                event_time.removesuffix("Z")  # local time without an offset
                if rng.random() < _LOCAL_TIME_SHARE
                else datetime.fromisoformat(event_time).strftime("%d.%m.%Y %H:%M:%S")
            )
        elif malformation == "oversize":
            properties["stack_trace"] = _STACK_FRAME * (OVERSIZE_BYTES // len(_STACK_FRAME) + 2)
            event["properties"] = properties
        else:  # nested_properties
            properties["device"] = dict(_NESTED_DEVICE)
            event["properties"] = properties
        return SimulatedMessage(key, encode(event), "malformed")
