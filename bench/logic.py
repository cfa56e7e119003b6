"""``python -m bench.logic``: the job's per-event logic on a simulated day, in-process.

No Bytewax, no servers: the day's messages (generated first, not timed) go through the
dataflow's own decode step, identity shards (:class:`~flows.dataflow.ShardLogic`, the native
core) and journeys shards (:class:`~flows.dataflow.JourneysLogic`) on one thread, and the CPU
time of each stage is reported per valid event. Steadier than the whole job on a shared
machine (no other threads, no I/O), so it tells what a change to the logic is worth.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Annotated, Any

import typer

from bench.run import DAY_START
from flows.dataflow import (
    JOURNEY_BATCHES,
    SHARD_INPUTS,
    JourneysLogic,
    ShardLogic,
    _decode_step,
    _journeys_logic,
    _route_journeys,
    identity_shard_config,
    journeys_config,
)
from flows.settings import load_settings
from operators.shard_state import ShardBatchResult, ShardInput
from sources.simulator import SimulationConfig, generate
from state.records import RawMessage

app = typer.Typer(add_completion=False)


def _no_segments(customers: Any) -> dict[str, str]:
    return {}


@app.command()
def logic(
    events: Annotated[int, typer.Option(help="Valid events over the 24-hour day.")] = 300_000,
    customers: Annotated[int, typer.Option(help="Customers in the population.")] = 10_500,
    partitions: Annotated[int, typer.Option(help="Input partitions (round robin).")] = 4,
    batch: Annotated[int, typer.Option(help="Messages per decoded batch.")] = 20_000,
    shards: Annotated[int, typer.Option(help="Identity and journeys shards.")] = 128,
) -> None:
    """Run the day through decode, identity shards and journeys; print CPU µs per event."""
    settings = load_settings(shard_count=shards)
    rate = events / 86_400
    config = SimulationConfig(
        customers=customers,
        rate=rate,
        duration_s=events / rate,
        seed=1,
        start=DAY_START,
        daily_curve=True,
        duplicate_rate=0.02,
        malformed_rate=0.01,
        late_rate=0.01,
        late_max_s=110.0,
    )
    messages = [
        RawMessage("bench.events", n % partitions, n // partitions, m.value, m.key)
        for n, m in enumerate(generate(config))
    ]
    positions = tuple(f"bench.events#{p}" for p in range(partitions))
    decode = _decode_step(settings, None, SHARD_INPUTS)
    route = _route_journeys(JOURNEY_BATCHES)
    shard_config = identity_shard_config(settings, positions)
    journey_config = journeys_config(settings)
    identity_shards: dict[str, ShardLogic] = {}
    journeys: dict[str, JourneysLogic] = {}
    spent: dict[str, float] = defaultdict(float)
    valid = 0
    clock = time.thread_time
    for start in range(0, len(messages), batch):
        started = clock()
        decoded = [i for i in decode(messages[start : start + batch]) if isinstance(i, tuple)]
        spent["decode"] += clock() - started
        started = clock()
        results: list[tuple[str, ShardBatchResult]] = []
        for name, shard_input in decoded:
            assert isinstance(shard_input, ShardInput)
            shard = identity_shards.get(name)
            if shard is None:
                shard = identity_shards[name] = ShardLogic(shard_config, None)
            results.extend((name, r) for r in shard.on_batch([shard_input])[0])
        spent["identity shards"] += clock() - started
        started = clock()
        to_journeys: dict[str, list[Any]] = defaultdict(list)
        for item in results:
            valid += item[1].pipeline.get("valid", 0)
            for name, journey_batch in route(item):
                to_journeys[name].append(journey_batch)
        for name, batches in to_journeys.items():
            logic = journeys.get(name)
            if logic is None:
                logic = journeys[name] = _journeys_logic(None, journey_config, _no_segments, False)
            logic.on_batch(batches)
        spent["journeys"] += clock() - started
    total = sum(spent.values())
    report = {
        "valid_events": valid,
        **{f"{stage} µs/event": round(s * 1e6 / valid, 2) for stage, s in spent.items()},
        "total µs/event": round(total * 1e6 / valid, 2),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    app()
