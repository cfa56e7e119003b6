"""Job-wide aggregates: the sum of every shard's deltas, projected to Redis as absolute values.

Shards send deltas; these states hold the totals and turn every change into Redis writes of the
full, current value. A replay after a crash restores the totals from the same snapshot as the
shards, so it rewrites the same numbers instead of adding them twice.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

import msgspec

from operators.shard_state import LOW_WATERMARK, MINUTE_MS, MinuteCounts
from state import redis_keys
from state.contract import EVENT_TYPES
from state.moments import ENDLESS, NEVER
from state.records import HashWrite, RedisWrite, StreamEntry
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1


minute_label = functools.lru_cache(maxsize=8192)(redis_keys.minute_label)


class RedisKeys(msgspec.Struct, frozen=True):
    """Names of the Redis keys, all under one configurable prefix (see docs/redis-keys.md)."""

    prefix: str

    def minute(self, family: str, minute_ms: int) -> str:
        """Hash of one UTC minute of a per-minute figure."""
        return redis_keys.minute_key(self.prefix, family, minute_label(minute_ms))

    def series(self, family: str) -> str:
        """Stream of a per-minute figure: one entry per closed minute."""
        return redis_keys.series_key(self.prefix, family)

    def events_by_type_minute(self, minute_ms: int) -> str:
        """Hash: event_type → events in that UTC minute."""
        return self.minute(redis_keys.EVENTS_BY_TYPE, minute_ms)

    @property
    def events_by_type_series(self) -> str:
        """Stream: one entry per closed minute, a field per event_type plus ``total``."""
        return self.series(redis_keys.EVENTS_BY_TYPE)

    @property
    def pipeline(self) -> str:
        """Hash: the job's own health counters."""
        return redis_keys.pipeline_key(self.prefix)


class MinuteSeriesSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of the per-minute series."""

    version: int
    counts: dict[int, dict[str, int]]
    max_minute_ms: int
    closed_through_ms: int
    watermark_ms: int = NEVER
    """The senders' watermark the minutes close by (absent before it drove them)."""
    open_from: dict[str, int] = {}
    """Per sender, the earliest minute it may still send deltas for (see :class:`MinuteDeltas`)."""


class MinuteDeltas(msgspec.Struct, frozen=True, gc=False):
    """One sender's per-minute deltas, and its watermark: no later delta of its will be for a
    minute that ended before ``watermark_ms`` less the series' delay.
    """

    watermark_ms: int
    counts: MinuteCounts
    sender: str = ""
    open_from_ms: int = ENDLESS
    """For a sender whose deltas for a minute can come long after the watermark passed it (a
    journeys shard counts a session's start when the session closes): the earliest time it
    still holds open; the minutes from there on stay open until it moves on."""


class MinuteFamily(msgspec.Struct, frozen=True):
    """A per-minute figure: a hash per minute and a stream with one entry per closed minute."""

    name: str
    fields: tuple[str, ...]
    with_total: bool = False


EVENTS_BY_TYPE = MinuteFamily(redis_keys.EVENTS_BY_TYPE, EVENT_TYPES, with_total=True)
JOURNEYS = MinuteFamily(
    redis_keys.JOURNEYS, ("active_customers", "sessions_started", "sessions_converted")
)
# Offers by the minute they went out (sent, held out) or were suppressed.
OFFERS = MinuteFamily(redis_keys.OFFERS, ("sent", "held_out", "suppressed"))


class MinuteSeries:
    """A per-minute figure for every shard together (events by type, journeys, offers).

    A minute is final (its stream entry written, once) when the senders' watermark, less the
    series' delay, has passed its end: the slowest input partition's progress decides, not the
    newest minute seen, so a partition read ahead of the others closes nothing early.
    """

    def __init__(
        self,
        keys: RedisKeys,
        delay_ms: int,
        retention_s: int,
        snapshot: bytes | None = None,
        family: MinuteFamily = EVENTS_BY_TYPE,
    ) -> None:
        """Create the series, empty or from a snapshot.

        Args:
            keys: key names.
            delay_ms: how long after the senders' watermark a minute is final.
            retention_s: how long minute hashes and stream entries are kept.
            snapshot: from :meth:`snapshot`.
            family: which figure.
        """
        self._keys = keys
        self._family = family
        self._delay_ms = delay_ms
        self._retention_s = retention_s
        self.counts: dict[int, dict[str, int]] = {}
        self._max_minute_ms = NEVER
        self._closed_through_ms = NEVER
        self._watermark_ms = NEVER
        self._open_from: dict[str, int] = {}
        if snapshot is not None:
            state = decode_snapshot(snapshot, MinuteSeriesSnapshot, SNAPSHOT_VERSION)
            self.counts = {m: dict(c) for m, c in state.counts.items()}
            self._max_minute_ms = state.max_minute_ms
            self._closed_through_ms = state.closed_through_ms
            self._watermark_ms = state.watermark_ms
            self._open_from = dict(state.open_from)

    def apply(
        self,
        deltas: Iterable[MinuteCounts],
        watermark_ms: int = NEVER,
        open_from: Mapping[str, int] | None = None,
    ) -> list[RedisWrite]:
        """Add deltas; move to the senders' watermark and what they hold open (sender → its
        ``open_from_ms``, see :class:`MinuteDeltas`); return the writes that make Redis show
        the new totals and the minutes that became final.
        """
        self._watermark_ms = max(self._watermark_ms, watermark_ms)
        if open_from:
            self._open_from.update(open_from)
        changed: set[int] = set()
        counts = self.counts
        for delta in deltas:
            for minute_ms, per_type in delta.items():
                total = counts.get(minute_ms)
                if total is None:
                    counts[minute_ms] = dict(per_type)
                else:
                    for event_type, n in per_type.items():
                        total[event_type] = total.get(event_type, 0) + n
                changed.add(minute_ms)
                self._max_minute_ms = max(self._max_minute_ms, minute_ms)
        writes: list[RedisWrite] = [
            HashWrite(
                self._keys.minute(self._family.name, minute_ms),
                dict(counts[minute_ms]),
                self._retention_s,
            )
            for minute_ms in sorted(changed)
        ]
        writes.extend(self._close_minutes(self._final_through_ms()))
        return writes

    def close_all(self) -> list[RedisWrite]:
        """The input ended (a bounded run to its end, not a requested stop): every minute is
        final, so the open ones get their stream entries now. The watermark does not move: if
        a later run resumes from this state, its own minutes close as usual, and events it adds
        to a minute closed here change the minute's hash only, as late events would.
        """
        return self._close_minutes(ENDLESS)

    def _final_through_ms(self) -> int:
        """Minutes ending by this time are final: the senders' watermark less the series'
        delay, and no session that started earlier still open.
        """
        return min(
            self._watermark_ms - self._delay_ms, min(self._open_from.values(), default=ENDLESS)
        )

    def _close_minutes(self, watermark_ms: int) -> list[RedisWrite]:
        """Minutes that ended by ``watermark_ms`` get their one entry in the stream."""
        closing = sorted(
            m for m in self.counts if self._closed_through_ms < m and m + MINUTE_MS <= watermark_ms
        )
        writes: list[RedisWrite] = []
        for minute_ms in closing:
            per_type = self.counts[minute_ms]
            fields: dict[str, int | float | str] = {
                f: per_type.get(f, 0) for f in self._family.fields
            }
            if self._family.with_total:
                fields["total"] = sum(per_type.values())
            max_len = self._retention_s // 60
            if minute_ms >= 0:
                # A stream's entry ids start at 1970: a minute before it (an event the contract
                # accepts, dated in year 1) stays in its minute hash, not in the series.
                series = self._keys.series(self._family.name)
                writes.append(StreamEntry(series, minute_ms, fields, max_len))
            self._closed_through_ms = minute_ms
        # Closed minutes older than the retention are no longer needed in state.
        horizon = self._max_minute_ms - self._retention_s * 1000
        for minute_ms in [m for m in self.counts if m < horizon and m <= self._closed_through_ms]:
            del self.counts[minute_ms]
        return writes

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(
            MinuteSeriesSnapshot(
                SNAPSHOT_VERSION,
                self.counts,
                self._max_minute_ms,
                self._closed_through_ms,
                self._watermark_ms,
                self._open_from,
            )
        )


class PipelineSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of the pipeline counters."""

    version: int
    totals: dict[str, int]


SAMPLED = redis_keys.PIPELINE_SAMPLED
LAG_FIELD = "lag:"
"""A pipeline delta ``lag:<source>#<partition>`` is a level: how far that input partition is
behind its end (messages), as its source last said; it goes to ``<prefix>:ops:lag``."""
WINDOWS = {"valid": 300, "dead_letters": 600, "late": 600, "offer_rule_errors": 600}
"""Counter → seconds of wall clock its recent growth is reported over (for alert rules)."""


class PipelineTotals:
    """The job's health counters: valid, duplicates, late and dead letters by stage, offer rule
    errors, and the low watermark (``low_watermark_ms``, the newest any shard reported).

    Besides the hash, each of :data:`SAMPLED` goes to a stream of its own by the wall clock (at
    most one entry every ``sample_s``, a day of entries kept), for what is measured over time:
    dead letters rising, no events for minutes. The streams are operations' view of the job at
    work, not figures of the events: a replay after a crash appends its own entries.

    Another hash says how much each of :data:`WINDOWS` grew over its last minutes of wall clock
    (``dead_letters_last_10m``…), from the samples this process took: the single values
    Grafana's alert rules compare to a threshold. After a restart they count from the restart.
    Both live under ``<prefix>:ops:`` (:func:`state.redis_keys.ops_counter_key`).
    """

    def __init__(
        self,
        keys: RedisKeys,
        snapshot: bytes | None = None,
        clock: Callable[[], float] = time.time,
        sample_s: float = 10.0,
    ) -> None:
        """Create the counters, empty or from a snapshot."""
        self._keys = keys
        self._clock = clock
        self._sample_s = sample_s
        self._sampled_at = -sample_s
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._lag: dict[str, int] = {}
        self._epoch_closed_ms: int | None = None
        self.totals: dict[str, int] = {}
        if snapshot is not None:
            self.totals = dict(decode_snapshot(snapshot, PipelineSnapshot, SNAPSHOT_VERSION).totals)

    def apply(self, deltas: Iterable[dict[str, int]], *, sample: bool = False) -> list[RedisWrite]:
        """Add deltas; return the writes of the hashes (and the samples when due, or when
        ``sample``).
        """
        totals = self.totals
        lag_changed = False
        for delta in deltas:
            for name, n in delta.items():
                if name.startswith(LAG_FIELD):
                    self._lag[name.removeprefix(LAG_FIELD)] = n
                    lag_changed = True
                elif name == LOW_WATERMARK:
                    # A level, not a count: how far every input partition has got.
                    totals[name] = max(totals.get(name, n), n)
                else:
                    totals[name] = totals.get(name, 0) + n
        now = self._clock()
        # Every sampled counter is there, 0 until it counts: a panel reading one shows 0, not
        # "no data".
        fields: dict[str, int | float | str] = dict.fromkeys(SAMPLED, 0)
        fields.update(totals)
        recent = redis_keys.ops_recent_key(self._keys.prefix)
        writes: list[RedisWrite] = [
            HashWrite(self._keys.pipeline, fields),
            HashWrite(recent, self._recent(now)),
        ]
        if lag_changed:
            behind: dict[str, int | float | str] = dict(self._lag)
            behind["total"] = sum(self._lag.values())
            writes.append(HashWrite(redis_keys.ops_lag_key(self._keys.prefix), behind))
        if sample or now - self._sampled_at >= self._sample_s:
            self._sampled_at = now
            self._samples.append((now, {name: totals.get(name, 0) for name in WINDOWS}))
            max_len = int(86_400 / self._sample_s)
            for name in SAMPLED:
                stream = redis_keys.ops_counter_key(self._keys.prefix, name)
                writes.append(
                    StreamEntry(stream, int(now * 1000), {name: totals.get(name, 0)}, max_len)
                )
        return writes

    def epoch_closed(self) -> None:
        """Bytewax closed an epoch of this step: with a recovery store, its snapshot is written now.

        The time goes to ``<prefix>:ops:recent`` as ``epoch_closed_at_ms``.
        """
        self._epoch_closed_ms = int(self._clock() * 1000)

    def _recent(self, now: float) -> dict[str, int | float | str]:
        fields: dict[str, int | float | str] = dict(self._windows(now))
        if self._epoch_closed_ms is not None:
            fields["epoch_closed_at_ms"] = self._epoch_closed_ms
        return fields

    def _windows(self, now: float) -> dict[str, int]:
        """How much each windowed counter grew over its window, up to now."""
        longest = max(WINDOWS.values())
        while len(self._samples) > 1 and self._samples[1][0] <= now - longest:
            self._samples.popleft()
        out = {}
        for name, window_s in WINDOWS.items():
            # The newest sample at least the window old; while warming up, the oldest one.
            base = next(
                (s for t, s in reversed(self._samples) if t <= now - window_s),
                self._samples[0][1] if self._samples else {},
            )
            grown = self.totals.get(name, 0) - base.get(name, self.totals.get(name, 0))
            out[f"{name}_last_{window_s // 60}m"] = grown
        return out

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(PipelineSnapshot(SNAPSHOT_VERSION, self.totals))
