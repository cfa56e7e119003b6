"""Where the job's CPU goes, per thread: py-spy's samples of the bench job, summarised.

``make bench ARGS="--py-spy bench/profiles/day"`` records the job process with
``py-spy record --threads`` (the threads while they run, not while they wait) into
``<path>.txt`` (collapsed stacks, one ``thread;frame;…;frame count`` line per stack) and prints,
per thread, its share of the samples (of the process's CPU), and the functions it spent them in
(own time) and under (inclusive time). Time in C code (librdkafka, Arrow, Bytewax's Rust
runtime) counts for the Python frame that called it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.+?) \((?P<where>[^)]*)\)$")


@dataclass
class ThreadProfile:
    """One thread's samples."""

    name: str
    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    under: Counter[str] = field(default_factory=Counter)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    where = match.group("where").split("/")[-1].split(":")[0]
    return f"{match.group('function')} ({where})"


def read(path: Path) -> list[ThreadProfile]:
    """The collapsed stacks of a py-spy recording, per thread, busiest first."""
    threads: dict[str, ThreadProfile] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = threads.setdefault(frames[0], ThreadProfile(frames[0]))
        n = int(count)
        thread.samples += n
        calls = [_short(f) for f in frames[1:]]
        if not calls:
            continue
        thread.own[calls[-1]] += n
        for call in set(calls):
            thread.under[call] += n
    return sorted(threads.values(), key=lambda t: -t.samples)


def summary(threads: list[ThreadProfile], top: int = 12) -> str:
    """Per thread: its share of the samples, then its top functions by own and inclusive time."""
    total = sum(t.samples for t in threads) or 1
    lines = []
    for thread in threads:
        busy = thread.samples
        if busy * 100 < total:
            continue
        lines.append(f"## {thread.name}: {busy / total:.0%} of the process's samples")
        lines.append("own time:")
        lines += [f"  {n / busy:5.1%}  {name}" for name, n in thread.own.most_common(top)]
        lines.append("inclusive:")
        lines += [f"  {n / busy:5.1%}  {name}" for name, n in thread.under.most_common(top)]
    return "\n".join(lines)
