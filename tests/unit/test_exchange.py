"""On a cluster, the items the busiest exchanges carry cross as msgpack bytes: each comes back
equal to what was sent, and on one process nothing is packed."""

from __future__ import annotations

from typing import Any

from flows.exchange import Exchange, Placement
from flows.offers_step import OffersBatch
from operators.decode import BatchDecoder
from operators.shard_state import JourneyBatch, Shard, ShardConfig, ShardInput
from sources.simulator import SimulationConfig, generate
from state.records import Arrival, RawMessage

# Two processes of one worker each, seen from process 0.
PLACEMENT = Placement.of_process(0, 2, 1)
REMOTE = next(f"shard-{i:04d}" for i in range(100) if not PLACEMENT.is_local(f"shard-{i:04d}"))
LOCAL = next(f"shard-{i:04d}" for i in range(100) if PLACEMENT.is_local(f"shard-{i:04d}"))


def _round_trip(kind: Any, item: Any) -> None:
    cluster: Exchange[Any] = Exchange(kind, PLACEMENT)
    one_process: Exchange[Any] = Exchange(kind)
    packed = cluster.pack(REMOTE, item)
    assert isinstance(packed, bytes)
    assert one_process.unpack([packed, item]) == [item, item]
    # To a key of this process, or on one process, an item stays itself.
    assert cluster.pack(LOCAL, item) is item
    assert one_process.pack(REMOTE, item) is item


def test_what_the_shards_send_and_receive_crosses_unchanged() -> None:
    config = SimulationConfig(customers=200, rate=20, duration_s=600, seed=5, malformed_rate=0.0)
    messages = [
        RawMessage("bank.events", i % 4, i, m.value, m.key) for i, m in enumerate(generate(config))
    ]
    decoded = BatchDecoder(8, 16_384).decode(messages)
    config_ = ShardConfig(0, 3_600_000, 100_000, journey_shards=8, offers=True)
    shard = Shard(config_)
    journeys: dict[str, list[bytes]] = {}
    offers: dict[str, list[Arrival]] = {}
    for arrivals in decoded.by_shard.values():
        shard_input = ShardInput(arrivals, decoded.progress, decoded.idle)
        _round_trip(ShardInput, shard_input)
        result = shard.process(shard_input.arrivals, shard_input.progress, shard_input.idle)
        for journey, batch in result.journeys.items():
            journeys.setdefault(journey, []).append(batch)
        for key, customers in result.offers.items():
            offers.setdefault(key, []).extend(customers)
        for rows in result.archive_rows.values():
            _round_trip(list[Arrival], rows)
    assert journeys and offers
    for batches in journeys.values():
        for batch in batches:
            _round_trip(JourneyBatch, JourneyBatch(123, batch))
    for arrivals in offers.values():
        _round_trip(OffersBatch, OffersBatch(456, arrivals))
