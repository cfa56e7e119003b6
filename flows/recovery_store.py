"""The job's Bytewax recovery store: created once, whole; checked on every later start.

Bytewax 0.21 keeps a dataflow's state in a fixed number of SQLite partitions
(``part-N.sqlite3``, each recording its index and the count). A resumed cluster may have any
number of processes, but together they must reach every partition of the store, and the count
never changes. So:

- a missing (or empty) store is created whole: every partition in a staging folder beside it,
  then renamed into place in one step, so pods that start together never see half a store (the
  first rename wins; the others find the store and only check it);
- an existing store is only checked: every partition present, all of one count. A missing
  partition is never recreated (an empty one would let the job resume without the state it
  held) and nothing is ever deleted.

``clickstream recovery init`` runs it in the chart's init container; ``clickstream run`` checks
a store it is given the same way (creating a one-partition store where there is none).
"""

from __future__ import annotations

import errno
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from bytewax.recovery import init_db_dir

PART_NAME = re.compile(r"^part-(\d+)\.sqlite3$")
OPERATIONS = "docs/operations.md, 'The recovery store'"


class StoreError(RuntimeError):
    """The store exists, but the job must not start on it; the message says why."""


def partitions_on_disk(store: Path) -> dict[int, Path]:
    """The partition files in ``store`` by the index their name gives."""
    found: dict[int, Path] = {}
    for path in store.iterdir():
        match = PART_NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def partition_record(path: Path) -> tuple[int, int]:
    """The (index, count) a partition file records about itself.

    Raises:
        StoreError: when the file is not a Bytewax recovery partition.
    """
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA query_only = ON")
        row = connection.execute("SELECT part_index, part_count FROM parts").fetchone()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: not a Bytewax recovery partition ({error})") from None
    finally:
        connection.close()
    if row is None:
        raise StoreError(f"{path}: not a Bytewax recovery partition (no partition record)")
    return int(row[0]), int(row[1])


def check_store(store: Path, partitions: int) -> None:
    """Check that ``store`` holds exactly the partitions 0..partitions-1 of one store.

    Raises:
        StoreError: naming what is wrong and what to do.
    """
    found = partitions_on_disk(store)
    counts: set[int] = set()
    for index, path in sorted(found.items()):
        recorded_index, count = partition_record(path)
        if recorded_index != index:
            msg = f"{path} records partition {recorded_index}: a partition file was renamed"
            raise StoreError(msg)
        counts.add(count)
    if counts and counts != {partitions}:
        shown = " and ".join(str(c) for c in sorted(counts))
        msg = (
            f"the recovery store at {store} has {shown} partitions, not {partitions}: the "
            f"count is fixed for the life of a store; set --partitions (the chart's "
            f"recovery.partitions) back to {shown} ({OPERATIONS})"
        )
        raise StoreError(msg)
    missing = sorted(set(range(partitions)) - set(found))
    if missing:
        msg = (
            f"partitions {missing} of {partitions} are missing from the recovery store at "
            f"{store}: restore them from a backup; the job does not start with empty ones, "
            f"which would lose the state they held ({OPERATIONS})"
        )
        raise StoreError(msg)


def create_store(store: Path, partitions: int) -> bool:
    """Create the store whole unless another pod already has; True when this call created it."""
    store.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{store.name}.new-", dir=store.parent))
    try:
        init_db_dir(staging, partitions)  # type: ignore[no-untyped-call]  # Bytewax's Rust core
        staging.chmod(0o770)
        try:
            # Atomic, and onto an empty folder at most: a store another pod put there first
            # stays as it is.
            staging.rename(store)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def prepare_store(store: Path, partitions: int) -> str:
    """Create or check the store; what was done, for the log.

    Raises:
        StoreError: when the job must not start on the store.
    """
    exists = store.is_dir() and any(store.iterdir())
    if not exists and create_store(store, partitions):
        return f"created the recovery store at {store} with {partitions} partitions"
    check_store(store, partitions)
    return f"recovery store at {store}: {partitions} partitions, all present"


def recorded_partitions(store: Path) -> int | None:
    """The partition count the store's first partition file records (None: no store yet).

    Raises:
        StoreError: when that file is not a Bytewax recovery partition.
    """
    found = partitions_on_disk(store) if store.is_dir() else {}
    if not found:
        return None
    return partition_record(found[min(found)])[1]
