"""The native core predicts the worker Bytewax routes a state key to.

On a cluster, an item is packed as bytes only when its key's worker is in another process
(:mod:`flows.exchange`); a wrong prediction would cost speed (a pickled struct), never an item.
Checked against Bytewax itself: two workers in one process, each key's state built on one.
"""

from __future__ import annotations

import threading

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow, Stream
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from bytewax.run import cli_main
from bytewax.testing import TestingSink, TestingSource
from clickstream_native import bytewax_worker

from sinks.parquet_archive import ARCHIVE_PARTITIONS, archive_partition

KEYS = [f"shard-{i:04d}" for i in range(64)] + ["journey-0001", "sessions-00", "figures"]


def _keyed_state(flow: Dataflow, threads: dict[str, int]) -> Stream[tuple[str, str]]:
    """Every key of :data:`KEYS` through a stateful step that notes the thread it runs on."""
    lock = threading.Lock()

    def remember(state: None, value: str) -> tuple[None, str]:
        with lock:
            threads[value] = threading.get_ident()
        return None, value

    keyed = op.key_on("key", op.input("in", flow, TestingSource(KEYS)), lambda k: k)
    return op.stateful_map("where", keyed, remember)


def test_keys_land_on_the_worker_the_native_core_predicts() -> None:
    threads: dict[str, int] = {}
    flow = Dataflow("routing")
    out: list[object] = []
    op.output("out", _keyed_state(flow, threads), TestingSink(out))
    cli_main(flow, workers_per_process=2)

    assert set(threads) == set(KEYS)
    by_thread: dict[int, set[int]] = {}
    for key, thread in threads.items():
        by_thread.setdefault(thread, set()).add(bytewax_worker(key, 2))
    # Each worker thread holds the keys of exactly one predicted worker, and both are used.
    assert sorted(len(workers) for workers in by_thread.values()) == [1, 1]


class _WhereSink(FixedPartitionedSink[str, None]):
    """The archive sink's partitions and routing, remembering the thread that writes each."""

    def __init__(self, workers: int, written: dict[str, set[int]]) -> None:
        self._workers = workers
        self._written = written

    def list_parts(self) -> list[str]:
        return list(ARCHIVE_PARTITIONS)

    def part_fn(self, item_key: str) -> int:
        return archive_partition(item_key, self._workers)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _WherePart:
        return _WherePart(self._written)


class _WherePart(StatefulSinkPartition[str, None]):
    def __init__(self, written: dict[str, set[int]]) -> None:
        self._written = written

    def write_batch(self, values: list[str]) -> None:
        for key in values:
            self._written.setdefault(key, set()).add(threading.get_ident())

    def snapshot(self) -> None:
        return None


@pytest.mark.parametrize("workers", [2, 3])
def test_archive_objects_are_written_by_the_worker_that_made_them(workers: int) -> None:
    """Each worker's archive objects go to a sink partition whose primary is that worker, so
    on a cluster they never cross to another process."""
    made: dict[str, int] = {}
    flow = Dataflow("archive_routing")
    written: dict[str, set[int]] = {}
    op.output("archive", _keyed_state(flow, made), _WhereSink(workers, written))
    cli_main(flow, workers_per_process=workers)

    assert set(written) == set(KEYS)
    assert all(written[key] == {made[key]} for key in KEYS)
    assert len(set(made.values())) == workers
