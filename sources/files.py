"""JSON-lines file replay: each file is one input partition, its line number the offset.

Plain and gzip files (by the ``.gz`` suffix). The resume state is the next line number, so a
replay resumed from the recovery store skips what was already read.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from state.records import RawMessage, idle_mark
from state.stop import stop_requested


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


class _FilePartition(StatefulSourcePartition[RawMessage, int]):
    def __init__(self, path: Path, next_line: int, batch_size: int) -> None:
        self._source = f"file:{path}"
        self._file = _open(path)
        self._lines: Iterator[bytes] = iter(self._file)
        self._line_no = 0
        self._batch_size = batch_size
        self._finished = False
        for _ in range(next_line):
            if next(self._lines, None) is None:
                break
            self._line_no += 1

    def next_batch(self) -> list[RawMessage]:
        if stop_requested():
            raise StopIteration
        batch: list[RawMessage] = []
        source = self._source
        for line in self._lines:
            offset = self._line_no
            self._line_no += 1
            value = line.rstrip(b"\r\n")
            if value.strip():
                batch.append(RawMessage(source, 0, offset, value))
            if len(batch) >= self._batch_size:
                return batch
        if self._finished:
            raise StopIteration
        # The file has no more to give: it no longer holds the watermark back.
        self._finished = True
        batch.append(idle_mark(source, 0, self._line_no))
        return batch

    def snapshot(self) -> int:
        return self._line_no

    def close(self) -> None:
        self._file.close()


class JsonLinesSource(FixedPartitionedSource[RawMessage, int]):
    """Replays events from JSON-lines files, one object per line."""

    def __init__(self, paths: list[Path], batch_size: int = 5000) -> None:
        """Create a source over ``paths`` (plain or ``.gz``)."""
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            msg = f"input file not found: {', '.join(missing)}"
            raise FileNotFoundError(msg)
        self._paths = {str(p.resolve()): p.resolve() for p in paths}
        self._batch_size = batch_size

    def list_parts(self) -> list[str]:
        """One partition per file."""
        return list(self._paths)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FilePartition:
        """Open one file at its resume line."""
        return _FilePartition(self._paths[for_part], resume_state or 0, self._batch_size)
