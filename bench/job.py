"""The job as the benchmark runs it: the real dataflow over a Kafka topic until its end.

Times from the first message consumed to the last output flushed (the dataflow returns only
after every sink has written and closed), and reports the process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import timedelta
from typing import Any

from bytewax.inputs import StatefulSourcePartition
from bytewax.run import cli_main

from flows.dataflow import build_flow
from flows.runner import tune_gc
from flows.settings import load_settings
from sources.kafka import KafkaEventSource

FIRST_BATCH: list[float] = []


class _TimedPartition(StatefulSourcePartition[Any, Any]):
    def __init__(self, inner: StatefulSourcePartition[Any, Any]) -> None:
        self._inner = inner

    def next_batch(self) -> Any:
        batch = self._inner.next_batch()
        if batch and not FIRST_BATCH:
            FIRST_BATCH.append(time.time())
        return batch

    def next_awake(self) -> Any:
        return self._inner.next_awake()

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class _TimedKafkaSource(KafkaEventSource):
    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        return _TimedPartition(super().build_part(step_id, for_part, resume_state))


def main() -> None:
    """Run once and print one JSON line: first consumed and last flushed (epoch s), peak RSS.

    Arguments: workers per process, then optionally process id and ``;``-joined addresses.
    """
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    process_id = int(sys.argv[2]) if len(sys.argv) > 2 else None
    addresses = sys.argv[3].split(";") if len(sys.argv) > 3 else None
    settings = load_settings()
    source = _TimedKafkaSource(
        settings.kafka_brokers, settings.events_topics, settings.kafka_batch_size, tail=False
    )
    flow = build_flow(settings, source)
    tune_gc()
    started = time.time()
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=timedelta(seconds=settings.epoch_interval_s),
    )
    ended = time.time()
    first = FIRST_BATCH[0] if FIRST_BATCH else started
    result = {
        "first": first,
        "ended": ended,
        "startup_s": first - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
