"""``python -m bench.logic``: the job's per-event logic on a simulated day, in-process.

No Bytewax, no servers: the day's messages (generated first, not timed) go through the
dataflow's own decode step, identity shards (the native core) and journeys shards on one thread
(``tests/support/streamed.py``, the path the property tests drive), and the CPU time of each
stage is reported per valid event. Steadier than the whole job on a shared machine (no other
threads, no I/O), so it tells what a change to the logic is worth.
"""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path
from typing import Annotated

import typer

from bench.run import traffic
from sources.simulator import generate
from state.records import RawMessage
from state.settings import load_settings
from tests.support.streamed import StreamedSteps

app = typer.Typer(add_completion=False)


def _rss_mb() -> int:
    """The process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 2**20


@app.command()
def logic(
    events: Annotated[int, typer.Option(help="Valid events over the 24-hour day.")] = 300_000,
    customers: Annotated[int, typer.Option(help="Customers in the population.")] = 10_500,
    partitions: Annotated[int, typer.Option(help="Input partitions (round robin).")] = 4,
    batch: Annotated[int, typer.Option(help="Messages per decoded batch.")] = 20_000,
    shards: Annotated[int, typer.Option(help="Identity and journeys shards.")] = 128,
) -> None:
    """Run the day through decode, identity shards and journeys; print CPU µs per event."""
    config = traffic(events, customers, profile="day", noise=True)
    messages = [
        RawMessage("bench.events", n % partitions, n // partitions, m.value, m.key)
        for n, m in enumerate(generate(config))
    ]
    positions = tuple(f"bench.events#{p}" for p in range(partitions))
    steps = StreamedSteps(load_settings(shard_count=shards), positions, keep=False)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before_mb = _rss_mb()
    for start in range(0, len(messages), batch):
        steps.feed(messages[start : start + batch])
    valid = steps.pipeline["valid"]
    held_mb = _rss_mb() - before_mb
    state_bytes = sum(len(s.snapshot()) for s in steps.shards.values()) + sum(
        len(j.snapshot()) for j in steps.journeys.values()
    )
    report = {
        "valid_events": valid,
        **{f"{stage} µs/event": round(s * 1e6 / valid, 2) for stage, s in steps.spent.items()},
        "total µs/event": round(sum(steps.spent.values()) * 1e6 / valid, 2),
        # The input is held in memory before the clock starts: what the steps add on top of it.
        "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "RSS held after the day MB (the steps' state)": held_mb,
        "state as snapshots MB": round(state_bytes / 2**20, 1),
        "snapshot bytes per customer": state_bytes // customers,
        "peak RSS over the input MB (state and batches)": (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb
        )
        // 1024,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    app()
