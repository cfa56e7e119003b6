"""The job as the benchmark runs it: the real dataflow over a Kafka topic until its end.

Times from the first message consumed to the last output flushed (the dataflow returns only
after every sink has written and closed), and reports the process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from bytewax.inputs import StatefulSourcePartition
from bytewax.outputs import Sink

from flows.dataflow import build_flow
from flows.exchange import Placement
from flows.runner import execute
from sources.alignment import ReadAlignment
from sources.kafka import KafkaEventSource
from state.settings import load_settings

FIRST_BATCH: list[float] = []
INPUT_GAPS: list[float] = []
"""Seconds between consecutive non-empty input batches (per partition): the stream's pauses."""
LAST_BATCH: list[float] = [0.0]


class _TimedPartition(StatefulSourcePartition[Any, Any]):
    def __init__(self, inner: StatefulSourcePartition[Any, Any]) -> None:
        self._inner = inner
        self._last: float | None = None

    def next_batch(self) -> Any:
        batch = self._inner.next_batch()
        if batch:
            now = time.time()
            if not FIRST_BATCH:
                FIRST_BATCH.append(now)
            if self._last is not None:
                INPUT_GAPS.append(now - self._last)
            self._last = LAST_BATCH[0] = now
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


def run(
    workers: int = 1,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    archive_sink: Sink[Any] | None = None,
) -> dict[str, Any]:
    """Run the job over the configured topic until its end; return its timings.

    With ``CLICKSTREAM_RECOVERY_DIR`` set, state is snapshotted every epoch as in production.

    Returns:
        ``cpu_s`` (every thread, from the start of the dataflow), ``first`` and ``last`` input
        batch and ``ended`` (epoch s), ``startup_s``,
        ``peak_rss_mb`` and ``max_input_gap_s`` (the longest time between two input batches).
    """
    settings = load_settings()
    source = _TimedKafkaSource(
        settings.kafka_config(),
        settings.events_topics,
        settings.kafka_batch_size,
        tail=False,
        idle_s=settings.partition_idle_s,
        alignment=ReadAlignment(settings.alignment_max_drift_s * 1000),
    )
    flow = build_flow(
        settings,
        source,
        archive_sink=archive_sink,
        snapshots=settings.recovery_dir is not None,
        workers=workers * len(addresses or [""]),
        placement=Placement.of_process(process_id or 0, len(addresses), workers)
        if addresses and len(addresses) > 1
        else None,
    )
    started = time.time()
    cpu_started = _cpu_s()
    before = resource.getrusage(resource.RUSAGE_SELF)
    execute(flow, settings, workers=workers, process_id=process_id, addresses=addresses)
    after = resource.getrusage(resource.RUSAGE_SELF)
    ended = time.time()
    first = FIRST_BATCH[0] if FIRST_BATCH else started
    return {
        "cpu_s": _cpu_s() - cpu_started,
        "system_cpu_s": after.ru_stime - before.ru_stime,
        "context_switches": (after.ru_nvcsw - before.ru_nvcsw)
        + (after.ru_nivcsw - before.ru_nivcsw),
        "first": first,
        "last": LAST_BATCH[0],
        "ended": ended,
        "startup_s": first - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_input_gap_s": max(INPUT_GAPS, default=0.0),
    }


def _cpu_s() -> float:
    """CPU seconds of this process, every thread (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Run once and print one JSON line: first consumed and last flushed (epoch s), peak RSS.

    Arguments: workers per process, then optionally process id and ``;``-joined addresses.
    """
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    process_id = int(sys.argv[2]) if len(sys.argv) > 2 else None
    addresses = sys.argv[3].split(";") if len(sys.argv) > 3 else None
    print(json.dumps(run(workers, process_id, addresses)))


if __name__ == "__main__":
    main()
