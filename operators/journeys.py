"""Journeys shards: sessions per identity and every BEHEX figure, as deltas for the totals.

A journeys shard holds the identities whose ids map to it (CRC-32, see
:func:`operators.shard_state.journey_shard_name`). Its events arrive with their identity already
decided (see :mod:`operators.identity`), as the msgpack batches the identity shards' native core
wrote, together with the identity shards' watermark (already less the allowed lateness).
Event-level figures are counted as events come, session-level figures when a session closes:
once that watermark, less the stitching allowance, is past the session's last event by more
than the session gap. An event that would join a closed session is counted late for sessions.

All of that runs in the native core (:class:`clickstream_native.JourneysCore`,
``native/src/journeys.rs``, one call per batch), which also writes and reads the shard's
snapshot (:class:`JourneySnapshot` describes its layout). This module turns what the core
counted into figure deltas under their Redis key names, by UTC day of the event (event-level
figures) or of the session's first event (session-level ones), each day's ``all`` events,
sessions and conversions also into the month's figures and the list of days (key names in
docs/redis-keys.md), and decodes the closed sessions (:class:`SessionRecord`, with the
customer's segment from the customer store).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import msgspec
from clickstream_native import FIGURE_FAMILIES, JourneysCore

from state import redis_keys as rk
from state.funnels import DEFAULT_FUNNELS, Funnel
from state.moments import ENDLESS, NEVER
from state.redis_keys import DIMENSIONS, by_dimension, day_key
from state.totals import HASH, NO_DAY, ZSET, FigureDeltas, Ratio, add_deltas, count

RATIOS = (
    Ratio("conversions", "sessions", rk.CONVERSION_RATE),
    Ratio("submitted", "started", rk.COMPLETION_RATE),
)

SegmentLookup = Callable[[Iterable[str]], dict[str, str]]
"""Customer ids → segment (missing or unknown customers may be left out)."""


class JourneyConfig(msgspec.Struct, frozen=True):
    """What a journeys shard needs to know."""

    prefix: str
    gap_ms: int = 30 * 60_000
    stitch_allowance_ms: int = 15 * 60_000
    funnels: tuple[Funnel, ...] = DEFAULT_FUNNELS


class SessionRecord(msgspec.Struct, frozen=True, gc=False):
    """A closed session, as the archive and downstream consumers see it."""

    session_id: str
    identity: str
    customer_id: str | None
    absorbed_session_ids: tuple[str, ...]
    devices: tuple[str, ...]
    start_ms: int
    end_ms: int
    duration_ms: int
    event_count: int
    screens: tuple[str, ...]
    exit_screen: str | None
    converted: bool
    app: str | None
    os: str | None
    app_version: str | None
    channel: str
    segment: str
    event_ids: tuple[str, ...] = ()
    """Every event of the session, in order: the archive's event → session mapping (empty in
    records archived before it was kept)."""


class JourneyBatchResult(msgspec.Struct, gc=False):
    """What one batch of a journeys shard changed."""

    figures: FigureDeltas
    minutes: dict[int, dict[str, int]]
    """Per-minute deltas (active customers, sessions started and converted) by minute."""
    sessions: list[SessionRecord]
    pipeline: dict[str, int]
    upstream_ms: int = NEVER
    """The identity shards' watermark the shard had acted on (filled by the shim)."""
    open_from_ms: int = ENDLESS
    """No session starting before this is still open here (filled by the shim)."""


class JourneySnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of a journeys shard, as the native core writes it (for reading it in
    tests and tools; the core reads and writes the bytes itself).
    """

    version: int
    """``JOURNEYS_SNAPSHOT_VERSION`` (2); the core also restores version 1, which kept the
    newest event time taken as well."""
    open_events: dict[str, list[msgspec.Raw]]
    """Identity → its open events (``SessionEvent`` arrays), in time order."""
    closed_end: dict[str, int]
    active_minutes: dict[int, list[str]]
    upstream_ms: int


FAMILIES: tuple[tuple[str, str], ...] = (
    *((HASH, by_dimension(d, "events")) for d in DIMENSIONS),
    *((HASH, by_dimension(d, "sessions")) for d in DIMENSIONS),
    *((HASH, by_dimension(d, "conversions")) for d in DIMENSIONS),
    (ZSET, rk.TOP_SCREENS),
    (ZSET, rk.TOP_ERRORS),
    (ZSET, rk.TOP_EXIT_SCREENS),
    (ZSET, rk.TRANSITIONS),
    (HASH, rk.SCREEN_SESSIONS),
    (HASH, rk.SCREEN_CONVERSIONS),
    (HASH, rk.BUTTON_SESSIONS),
    (HASH, rk.BUTTON_CONVERSIONS),
    (ZSET, rk.TOP_RAGE_CLICKS),
    (HASH, rk.FORMS_STARTED),
    (HASH, rk.FORMS_SUBMITTED),
    (ZSET, rk.TOP_ABANDONED_FORMS),
)
"""The day families the native core counts, in its numbering (``native/src/figures.rs``); the
funnels' families follow, in the configured order."""
if len(FAMILIES) != FIGURE_FAMILIES:  # pragma: no cover - a build of another version
    msg = f"the native core counts {FIGURE_FAMILIES} day families, this code names {len(FAMILIES)}"
    raise ImportError(msg)
_ALL = len(DIMENSIONS) - 1
_MONTH_FIGURES = {_ALL: "events", len(DIMENSIONS) + _ALL: "sessions"}
_MONTH_FIGURES[2 * len(DIMENSIONS) + _ALL] = "conversions"
"""The ``all`` families whose per-day total is also a day of the month's figure."""

day_label = functools.lru_cache(maxsize=1024)(rk.day_label)
_decode_sessions = msgspec.msgpack.Decoder(list[SessionRecord]).decode

Taken = tuple[dict[tuple[int, int], dict[str, int]], dict[int, dict[str, int]], bytes, int]
"""What the native core hands back for a batch (see ``JourneysCore.take``)."""


class Journeys:
    """Sessions and figures of the identities of one journeys shard (the native core, with the
    figures' Redis keys named here).
    """

    def __init__(self, config: JourneyConfig, snapshot: bytes | None = None) -> None:
        """Create the shard, empty or from a snapshot."""
        self._config = config
        self._families = FAMILIES + tuple((HASH, rk.funnel(f.name)) for f in config.funnels)
        funnels = [([(s.kind, s.name) for s in f.steps], f.window_ms) for f in config.funnels]
        self.core = JourneysCore(config.gap_ms, config.stitch_allowance_ms, funnels, snapshot)

    @property
    def upstream_ms(self) -> int:
        """The identity shards' watermark this shard has acted on."""
        return self.core.upstream_ms

    @upstream_ms.setter
    def upstream_ms(self, value: int) -> None:
        self.core.upstream_ms = value

    @property
    def open_identities(self) -> int:
        """How many identities have open sessions."""
        return self.core.open_identities

    def process(
        self, batches: Iterable[bytes], segments: SegmentLookup, upstream_ms: int
    ) -> JourneyBatchResult:
        """Take journeys batches (``ShardCore.journey_batches`` bytes); return figure deltas and
        closed sessions.

        ``upstream_ms`` is the sending identity shards' watermark; they all share the input's
        progress, so the newest one received is how far the input has got.
        """
        return self._result(self.core.take(list(batches), upstream_ms, segments))

    def flush(self, segments: SegmentLookup) -> JourneyBatchResult:
        """At the end of a bounded input: close every open session."""
        return self._result(self.core.flush(segments))

    def open_from_ms(self) -> int:
        """A time no open session here starts before: the per-minute session figures of earlier
        minutes are final as far as this shard goes (looked up once per minute of progress).
        """
        return self.core.open_from_ms()

    def snapshot(self) -> bytes:
        """An immutable copy of the state (the :class:`JourneySnapshot` layout)."""
        return self.core.snapshot()

    def _result(self, taken: Taken) -> JourneyBatchResult:
        counted, minutes, sessions, late = taken
        prefix = self._config.prefix
        figures: FigureDeltas = {}
        for (family, day_index), fields in counted.items():
            kind, name = self._families[family]
            label = day_label(day_index)
            add_deltas(figures, (kind, day_key(prefix, label, name), day_index), fields)
            figure = _MONTH_FIGURES.get(family)
            if figure is not None:
                # The day-of-month view of the month, and the days that have figures.
                month = (HASH, rk.month_key(prefix, label[:7], figure), day_index)
                count(figures, month, label[8:], fields["all"])
                if family == _ALL:
                    count(figures, (ZSET, rk.days_key(prefix), NO_DAY), label, fields["all"])
        pipeline = {"late_for_sessions": late} if late else {}
        return JourneyBatchResult(figures, minutes, _decode_sessions(sessions), pipeline)
