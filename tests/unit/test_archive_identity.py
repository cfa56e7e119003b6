"""The events table's identity: as the shard knew it when it processed the event."""

from __future__ import annotations

import msgspec

from operators.shard_state import Shard, ShardConfig
from sinks.parquet_archive import events_table
from state.contract import Event
from state.records import Arrival
from tests.support.events import event_json

CONFIG = ShardConfig(allowed_lateness_ms=300_000, dedupe_window_ms=3_600_000, dedupe_max_ids=1000)


def _event(
    event_id: str, seconds: float, customer: str | None = None, event_type: str = "click"
) -> Arrival:
    event = msgspec.json.decode(
        event_json(event_id, seconds, event_type, customer, "D1"), type=Event
    )
    return Arrival(event, int(event.event_time.timestamp() * 1000), "bank.events", 0, 0, 0)


def _identities(shard: Shard, *arrivals: Arrival) -> dict[str, str]:
    rows = [row for rows in shard.process(list(arrivals)).archive_rows.values() for row in rows]
    table = events_table(rows).to_pydict()
    return dict(zip(table["event_id"], table["identity"], strict=True))


def test_an_event_has_the_identity_known_when_its_shard_processed_it() -> None:
    shard = Shard(CONFIG)
    # Before any login on the device: the device itself.
    assert _identities(shard, _event("splash", 0)) == {"splash": "device:D1"}
    # A login and an anonymous event of the same batch are taken in event-time order.
    assert _identities(
        shard, _event("later", 20), _event("login", 10, "C7", "login"), _event("earlier", 5)
    ) == {"earlier": "device:D1", "login": "C7", "later": "C7"}
    # An event with a customer id is that customer's; an anonymous one the latest login's.
    assert _identities(
        shard,
        _event("own", 30, "C9"),
        _event("login2", 40, "C8", "login"),
        _event("between", 35),
        _event("after", 45),
    ) == {"own": "C9", "between": "C7", "login2": "C8", "after": "C8"}
    # A login that reaches the shard after an event does not change that event's row (the
    # event_sessions view has the final identity).
    assert _identities(shard, _event("early", 70)) == {"early": "C8"}
    assert _identities(shard, _event("login3", 65, "C5", "login"), _event("next", 75)) == {
        "login3": "C5",
        "next": "C5",
    }
    # Late events (here: 10 minutes behind) are archived with what the shard knows too.
    shard.process([_event("moves-time", 1000, "C9")])
    assert _identities(shard, _event("late", 68)) == {"late": "C5"}
