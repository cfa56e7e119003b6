"""`clickstream recovery init` (the chart's init container) and the job's own start: the
recovery store is created once, whole, by whichever pod gets there first; later starts only check
it; it never adds a partition to a store nor starts the job on a store it would resume wrongly
from.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, cluster_main

from flows.recovery_store import StoreError
from flows.runner import prepare_recovery

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")


def init_command(store: Path, partitions: int) -> list[str]:
    """The command the chart's init container runs."""
    return [CLICKSTREAM, "recovery", "init", str(store), "--partitions", str(partitions)]


def init_store(store: Path, partitions: int) -> subprocess.CompletedProcess[str]:
    """Run the command as the init container does."""
    command = init_command(store, partitions)
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def records(store: Path) -> dict[str, tuple[int, int]]:
    """Each partition file's (index, count), as Bytewax recorded them."""
    found = {}
    for path in sorted(store.iterdir()):
        with closing(sqlite3.connect(path)) as connection:
            found[path.name] = connection.execute(
                "SELECT part_index, part_count FROM parts"
            ).fetchone()
    return found


def snapshot(store: Path) -> dict[str, tuple[int, int, bytes]]:
    """What a later run must leave as it is: each file's inode, mtime and bytes."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in store.iterdir()
    }


def test_an_empty_volume_gets_a_whole_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = init_store(store, 4)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    assert records(store) == {f"part-{i}.sqlite3": (i, 4) for i in range(4)}
    # Nothing is left beside it but the store.
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_a_later_start_leaves_the_store_as_it_is(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert init_store(store, 3).returncode == 0
    before = snapshot(store)
    done = init_store(store, 3)
    assert done.returncode == 0, done.stderr
    assert "all present" in done.stdout
    assert snapshot(store) == before


def test_pods_starting_together_make_one_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    command = init_command(store, 6)
    pods = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = [pod.communicate(timeout=60)[0] for pod in pods]
    assert [pod.returncode for pod in pods] == [0] * 6
    assert sum("created" in out for out in outputs) == 1
    assert records(store) == {f"part-{i}.sqlite3": (i, 6) for i in range(6)}
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_another_partition_count_is_refused_and_the_store_kept(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert init_store(store, 4).returncode == 0
    before = snapshot(store)
    done = init_store(store, 8)
    assert done.returncode == 1
    assert "has 4 partitions, not 8" in done.stderr
    assert "fixed for the life of a store" in done.stderr
    assert snapshot(store) == before


def test_a_lost_partition_is_never_replaced_by_an_empty_one(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert init_store(store, 4).returncode == 0
    (store / "part-2.sqlite3").unlink()
    done = init_store(store, 4)
    assert done.returncode == 1
    assert "partitions [2] of 4 are missing" in done.stderr
    assert "restore them from a backup" in done.stderr
    assert not (store / "part-2.sqlite3").exists()


def test_a_foreign_file_in_the_store_stops_the_start(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert init_store(store, 2).returncode == 0
    (store / "part-1.sqlite3").write_bytes(b"not a database, but long enough to be read" * 100)
    done = init_store(store, 2)
    assert done.returncode == 1
    assert "not a Bytewax recovery partition" in done.stderr


def test_the_job_makes_its_own_store_and_will_not_resume_from_a_broken_one(
    tmp_path: Path,
) -> None:
    """`clickstream run --recovery-dir` without a store makes a one-partition store; a store
    made for a cluster is taken as it is; one with a partition lost stops the start."""
    alone = tmp_path / "alone"
    assert Path(prepare_recovery(alone).db_dir) == alone
    assert records(alone) == {"part-0.sqlite3": (0, 1)}
    cluster = tmp_path / "cluster"
    assert init_store(cluster, 3).returncode == 0
    prepare_recovery(cluster)
    assert records(cluster) == {f"part-{i}.sqlite3": (i, 3) for i in range(3)}
    (cluster / "part-0.sqlite3").unlink()
    with pytest.raises(StoreError, match=r"partitions \[0\] of 3 are missing"):
        prepare_recovery(cluster)


def running_totals(store: Path, items: list[tuple[str, int]], workers: int) -> list[object]:
    """A keyed running total over ``items`` on ``workers`` workers, resumed from ``store``."""
    flow = Dataflow("totals")
    keyed = op.input("in", flow, TestingSource(items))
    totals = op.stateful_map("total", keyed, lambda total, n: ((total or 0) + n,) * 2)
    out: list[object] = []
    op.output("out", totals, TestingSink(out))
    cluster_main(
        flow,
        [],
        0,
        epoch_interval=timedelta(0),
        recovery_config=RecoveryConfig(store),
        worker_count_per_proc=workers,
    )
    return out


def test_the_store_resumes_whatever_the_worker_count(tmp_path: Path) -> None:
    """Why one shared store: any number of workers that reaches every partition resumes the
    state, here written by three workers and continued by one, then by two."""
    store = tmp_path / "store"
    assert init_store(store, 4).returncode == 0
    day = [(f"customer-{i % 5}", i) for i in range(30)]
    first = running_totals(store, day[:10], workers=3)
    second = running_totals(store, day[:20], workers=1)
    third = running_totals(store, day, workers=2)
    expected: dict[str, int] = {}
    totals = []
    for key, n in day:
        expected[key] = expected.get(key, 0) + n
        totals.append((key, expected[key]))
    assert sorted(first + second + third) == sorted(totals)  # type: ignore[type-var]
