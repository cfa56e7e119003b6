"""Job-wide figures: the sum of every shard's deltas, written to Redis as absolute values.

A delta names a Redis key, its type (hash or sorted set), a field and the day its event belongs
to (for pruning). The totals are recoverable state; every change is written as the field's new
total, so a replay rewrites the same numbers instead of adding them again. Derived ratios
(conversion rates) are recomputed from the totals they come from.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from state.records import HashWrite, RedisWrite, ZSetWrite
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1
HASH = "h"
ZSET = "z"
FIGURES = "figures"
"""The state key of the figure totals (one key: every figure delta meets there)."""
NO_DAY = -1
"""The day of a figure that is not day-bound: never expires, never leaves the state."""

FigureKey = tuple[str, str, int]
"""(redis type ``h``/``z``, key, day index of the events it counts or -1 for no day)."""
FigureDeltas = dict[FigureKey, dict[str, int]]


class Ratio(msgspec.Struct, frozen=True):
    """A hash of rates kept equal to ``numerator / denominator`` field by field.

    The three keys share a pattern: ``<base>:<numerator>`` over ``<base>:<denominator>`` is
    written to ``<base>:<rate>``.
    """

    numerator: str
    denominator: str
    rate: str


def add_deltas(into: FigureDeltas, key: FigureKey, fields: dict[str, int]) -> None:
    """Merge ``fields`` into the deltas of ``key``."""
    current = into.get(key)
    if current is None:
        into[key] = dict(fields)
        return
    for field, n in fields.items():
        current[field] = current.get(field, 0) + n


def count(into: FigureDeltas, key: FigureKey, field: str, n: int = 1) -> None:
    """Add ``n`` to one field of ``key``."""
    current = into.get(key)
    if current is None:
        into[key] = {field: n}
    else:
        current[field] = current.get(field, 0) + n


class TotalsSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of the totals."""

    version: int
    totals: dict[str, dict[str, int]]
    """``<type>\\x1f<key>\\x1f<day>`` → field → total."""
    max_day: int


class Totals:
    """Sums deltas and produces the Redis writes of the changed fields."""

    def __init__(
        self,
        ratios: Iterable[Ratio] = (),
        retention_days: int = 35,
        expire_s: int | None = None,
        snapshot: bytes | None = None,
    ) -> None:
        """Create the totals, empty or from a snapshot.

        Args:
            ratios: rate hashes to keep in step with their parts.
            retention_days: day-bound keys older than this (by event day) leave the state.
            expire_s: TTL set on day-bound keys in Redis.
            snapshot: bytes from :meth:`snapshot`.
        """
        self._ratios = tuple(ratios)
        self._retention_days = retention_days
        self._expire_s = expire_s
        self._totals: dict[FigureKey, dict[str, int]] = {}
        self._max_day = -1
        if snapshot is not None:
            state = decode_snapshot(snapshot, TotalsSnapshot, SNAPSHOT_VERSION)
            for packed, fields in state.totals.items():
                kind, key, day = packed.split("\x1f")
                self._totals[(kind, key, int(day))] = dict(fields)
            self._max_day = state.max_day

    def value(self, kind: str, key: str, day: int) -> dict[str, int]:
        """The current totals of one key (for tests and tools)."""
        return dict(self._totals.get((kind, key, day), {}))

    def apply(self, batches: Iterable[FigureDeltas]) -> list[RedisWrite]:
        """Add deltas; return absolute writes of every changed field (and derived rates)."""
        changed: dict[FigureKey, set[str]] = {}
        totals = self._totals
        for deltas in batches:
            for figure, fields in deltas.items():
                current = totals.get(figure)
                if current is None:
                    current = totals[figure] = {}
                for field, n in fields.items():
                    current[field] = current.get(field, 0) + n
                changed.setdefault(figure, set()).update(fields)
                if figure[2] > self._max_day:
                    self._max_day = figure[2]
        writes: list[RedisWrite] = []
        for figure, names in changed.items():
            kind, key, day = figure
            values = {f: totals[figure][f] for f in names}
            expire = self._expire_s if day != NO_DAY else None
            if kind == ZSET:
                writes.append(ZSetWrite(key, values, expire))
            else:
                writes.append(HashWrite(key, dict(values), expire))
            writes.extend(self._derived(figure, names))
        self._prune()
        return writes

    def _derived(self, figure: FigureKey, fields: set[str]) -> list[RedisWrite]:
        kind, key, day = figure
        if kind != HASH:
            return []
        writes: list[RedisWrite] = []
        for ratio in self._ratios:
            base = _base_of(key, ratio.numerator) or _base_of(key, ratio.denominator)
            if base is None:
                continue
            numerator = self._totals.get((HASH, f"{base}:{ratio.numerator}", day), {})
            denominator = self._totals.get((HASH, f"{base}:{ratio.denominator}", day), {})
            rates: dict[str, int | float | str] = {
                f: round(numerator.get(f, 0) / denominator[f], 6)
                for f in fields
                if denominator.get(f)
            }
            if rates:
                expire = self._expire_s if day != NO_DAY else None
                writes.append(HashWrite(f"{base}:{ratio.rate}", rates, expire))
        return writes

    def _prune(self) -> None:
        horizon = self._max_day - self._retention_days
        if horizon <= 0:
            return
        for figure in [f for f in self._totals if f[2] != NO_DAY and f[2] < horizon]:
            del self._totals[figure]

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        packed = {f"{k}\x1f{key}\x1f{day}": v for (k, key, day), v in self._totals.items()}
        return encode_snapshot(TotalsSnapshot(SNAPSHOT_VERSION, packed, self._max_day))


def _base_of(key: str, part: str) -> str | None:
    suffix = f":{part}"
    return key[: -len(suffix)] if key.endswith(suffix) else None
