"""The job as the archive benchmark runs it: :mod:`bench.job` with the archive sink timed.

``python -m bench.archive_job on|off`` prints one JSON line: the job's timings, how long each
call on the archive path held the stream (the buffer cutting objects, snapshotting its rows;
the sink handing objects to its upload threads and, at each epoch's end, waiting for them:
Bytewax cannot close the epoch before) and, with the archive on, how long each object took to
encode and upload. With it off, the objects are decided as usual and dropped at the sink.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from bytewax.outputs import DynamicSink, Sink, StatefulSinkPartition, StatelessSinkPartition

import flows.dataflow
from bench.job import run
from operators.archive import ArchiveBuffer
from sinks.parquet_archive import ArchiveWriter, ParquetArchiveSink
from state.records import ArchiveObject, Arrival
from state.settings import load_settings

_LOCK = threading.Lock()
UPLOADS: list[tuple[str, int, float]] = []
"""(table, rows, seconds to encode and upload) of every object written."""
PAUSES: list[tuple[str, float, float]] = []
"""(what, when (epoch s), seconds) of every call on the archive path that holds the stream:
the buffer's ``add`` (``flush`` when it cut objects), ``due`` and ``snapshot``, and the sink's
``handover`` of objects to its upload threads and ``epoch_wait`` for them."""


def _timed(kind: str, started: float, at: float) -> None:
    PAUSES.append((kind, at, time.perf_counter() - started))


class TimedArchiveBuffer(ArchiveBuffer):
    """The real archive buffer, timing the calls a flush is made of."""

    def add(self, rows: Iterable[Arrival], now: float) -> list[ArchiveObject]:
        """Buffer rows (timed; a call that cuts objects is a flush)."""
        at, started = time.time(), time.perf_counter()
        objects = super().add(rows, now)
        _timed("flush" if objects else "add", started, at)
        return objects

    def due(self, now: float) -> list[ArchiveObject]:
        """Aged open chunks (timed as a flush when there are any)."""
        at, started = time.time(), time.perf_counter()
        objects = super().due(now)
        if objects:
            _timed("flush", started, at)
        return objects

    def snapshot(self) -> bytes:
        """The buffered rows as recoverable state (timed)."""
        at, started = time.time(), time.perf_counter()
        state = super().snapshot()
        _timed("snapshot", started, at)
        return state


class TimedArchiveWriter(ArchiveWriter):
    """The real writer, timing each object (called in the sink's upload threads)."""

    def write(self, obj: ArchiveObject) -> str:
        """Encode and upload one object, recording its rows and seconds."""
        started = time.perf_counter()
        path = super().write(obj)
        seconds = time.perf_counter() - started
        with _LOCK:
            UPLOADS.append((obj.table, len(obj.rows), seconds))
        return path


class _TimedPartition(StatefulSinkPartition[Any, Any]):
    def __init__(self, inner: StatefulSinkPartition[Any, Any]) -> None:
        self._inner = inner

    def write_batch(self, values: list[Any]) -> None:
        at, started = time.time(), time.perf_counter()
        self._inner.write_batch(values)
        _timed("handover", started, at)

    def snapshot(self) -> Any:
        at, started = time.time(), time.perf_counter()
        state = self._inner.snapshot()
        _timed("epoch_wait", started, at)
        return state

    def close(self) -> None:
        at, started = time.time(), time.perf_counter()
        self._inner.close()
        _timed("close", started, at)


class TimedArchiveSink(ParquetArchiveSink):
    """The real archive sink with its pauses and uploads recorded."""

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> Any:
        """The real partition, wrapped to time the calls that hold the stream."""
        return _TimedPartition(super().build_part(step_id, for_part, resume_state))


class _Discard(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        pass


class DiscardSink(DynamicSink[Any]):
    """No archive: the same objects are decided upstream and dropped here."""

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Discard:
        """A partition that drops everything."""
        return _Discard()


def main() -> None:
    """Run the job once with the archive ``on`` (timed) or ``off``; print one JSON line."""
    archive_on = (sys.argv[1] if len(sys.argv) > 1 else "on") == "on"
    settings = load_settings()
    # The dataflow builds its archive buffers itself; this swaps in the timed one for both runs.
    setattr(flows.dataflow, "ArchiveBuffer", TimedArchiveBuffer)  # noqa: B010
    sink: Sink[Any] = (
        TimedArchiveSink(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.storage_options(),
            writer=TimedArchiveWriter,
        )
        if archive_on
        else DiscardSink()
    )
    result = run(archive_sink=sink)
    result["uploads"] = UPLOADS
    result["pauses"] = PAUSES
    print(json.dumps(result))


if __name__ == "__main__":
    main()
