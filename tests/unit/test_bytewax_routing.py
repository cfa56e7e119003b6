"""The native core predicts the worker Bytewax routes a state key to.

On a cluster, an item is packed as bytes only when its key's worker is in another process
(:mod:`flows.exchange`); a wrong prediction would cost speed (a pickled struct), never an item.
Checked against Bytewax itself: two workers in one process, each key's state built on one.
"""

from __future__ import annotations

import threading

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main
from bytewax.testing import TestingSink, TestingSource
from clickstream_native import bytewax_worker

KEYS = [f"shard-{i:04d}" for i in range(64)] + ["journey-0001", "sessions-00", "figures"]


def test_keys_land_on_the_worker_the_native_core_predicts() -> None:
    threads: dict[str, int] = {}
    lock = threading.Lock()

    def remember(state: None, value: str) -> tuple[None, str]:
        with lock:
            threads[value] = threading.get_ident()
        return None, value

    flow = Dataflow("routing")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(KEYS)), lambda k: k)
    out: list[object] = []
    op.output("out", op.stateful_map("where", keyed, remember), TestingSink(out))
    cli_main(flow, workers_per_process=2)

    assert set(threads) == set(KEYS)
    by_thread: dict[int, set[int]] = {}
    for key, thread in threads.items():
        by_thread.setdefault(thread, set()).add(bytewax_worker(key, 2))
    # Each worker thread holds the keys of exactly one predicted worker, and both are used.
    assert sorted(len(workers) for workers in by_thread.values()) == [1, 1]
