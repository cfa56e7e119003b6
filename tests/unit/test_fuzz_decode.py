"""Mutated, truncated, oversized, mistyped and non-UTF-8 messages through the job's own steps:
each is either an accepted event or a dead letter with its reason and original bytes, exactly as
the plain reading of the contract (tests/support/reference.py) says, and nothing downstream
fails on what was accepted."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.routes import decode_step
from flows.shard_steps import SHARD_INPUTS
from operators.shard_state import ShardInput
from state.records import RawMessage
from state.settings import load_settings
from tests.support.fuzz import mutated
from tests.support.reference import is_valid
from tests.support.streamed import StreamedSteps

SETTINGS = load_settings(shard_count=8)


def _messages(rng: random.Random, count: int) -> list[RawMessage]:
    return [RawMessage("bank.events", 0, offset, mutated(rng)) for offset in range(count)]


def _check(messages: list[RawMessage]) -> None:
    decode = decode_step(SETTINGS, None, SHARD_INPUTS)
    [out] = decode(messages)
    accepted = {
        arrival.offset
        for _, shard_input in out.shard_inputs
        if isinstance(shard_input, ShardInput)
        for arrival in shard_input.arrivals
    }
    dead = {d.offset: d for d in out.dead_letters}
    assert not accepted & set(dead)
    for message in messages:
        assert message.value is not None
        if is_valid(message.value):
            assert message.offset in accepted, (message.value, dead.get(message.offset))
        else:
            letter = dead.get(message.offset)
            assert letter is not None, message.value
            assert letter.original == message.value
            assert letter.reason and letter.error_type and letter.stage in ("decode", "validate")
    steps = StreamedSteps(SETTINGS, ("bank.events#0",), keep=False)
    steps.feed(messages)
    steps.finish()
    counted = sum(steps.pipeline.get(k, 0) for k in ("valid", "duplicates"))  # late ⊂ valid
    assert counted == len(accepted)


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 40))
def test_every_mutated_message_is_an_event_or_a_dead_letter(rng: random.Random, count: int) -> None:
    _check(_messages(rng, count))


def test_twenty_thousand_mutated_messages_in_batches() -> None:
    rng = random.Random(20261207)
    for _ in range(10):
        _check(_messages(rng, 2000))
