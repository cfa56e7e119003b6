"""Journeys: sessions per identity and every BEHEX figure, as deltas for the totals.

One journeys shard holds the identities whose ids hash to it. Events arrive with their identity
already decided (see :mod:`operators.identity`); event-level figures are counted as they come,
session-level figures when a session closes. A session closes once this shard's newest event
time, minus the allowed lateness and the stitching allowance, is past its last event by more
than the session gap; an event that would join a closed session is late for sessions.

Figures are by UTC day of the event (event-level) or of the session's first event
(session-level); key names are documented in docs/redis-keys.md.
"""

from __future__ import annotations

import functools
import heapq
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

from operators.identity import DEVICE_PREFIX, device_identity
from operators.sessions import ClosedSession, IdentitySessions, SessionEvent, session_id
from operators.totals import HASH, ZSET, FigureDeltas, Ratio, count
from state.records import ArchiveObject
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1
DAY_MS = 86_400_000
MINUTE_MS = 60_000
RAGE_CLICKS = 3
"""More than this many clicks on one screen and element within a second is a rage click."""
RAGE_WINDOW_MS = 1000
DIMENSIONS = ("os", "app_version", "app", "channel", "segment", "all")
SESSION_CHANNELS = frozenset({"mobile", "web"})
UNKNOWN = "unknown"

RATIOS = (
    Ratio("conversions", "sessions", "conversion_rate"),
    Ratio("submitted", "started", "completion_rate"),
)

SegmentLookup = Callable[[Iterable[str]], dict[str, str]]
"""Customer ids → segment (missing or unknown customers may be left out)."""


class FunnelStep(msgspec.Struct, frozen=True):
    """One step: a screen viewed (``screen:NAME``) or an event type (``event:TYPE``)."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> FunnelStep:
        """Read ``screen:loan_application`` or ``event:conversion``."""
        kind, _, name = text.partition(":")
        if kind not in ("screen", "event") or not name:
            msg = f"funnel step {text!r} must be 'screen:<screen>' or 'event:<event_type>'"
            raise ValueError(msg)
        return cls(kind, name)

    def matches(self, event: SessionEvent) -> bool:
        """Whether this event reaches the step."""
        if self.kind == "screen":
            return event.event_type == "screen_view" and event.screen == self.name
        return event.event_type == self.name


class Funnel(msgspec.Struct, frozen=True):
    """Ordered steps reached within a conversion window from the first step."""

    name: str
    steps: tuple[FunnelStep, ...]
    window_ms: int

    def reached(self, events: Iterable[SessionEvent]) -> int:
        """How many steps a session reaches, in order, within the window from step 1.

        Every occurrence of step 1 is tried as a start, and the best is kept.
        """
        ordered = list(events)
        best = 0
        for start, first in enumerate(ordered):
            if not self.steps[0].matches(first):
                continue
            step = 1
            for event in ordered[start + 1 :]:
                if step == len(self.steps) or event.event_ms - first.event_ms > self.window_ms:
                    break
                if self.steps[step].matches(event):
                    step += 1
            best = max(best, step)
            if best == len(self.steps):
                break
        return best


DEFAULT_FUNNELS = (
    Funnel(
        "loan_application",
        tuple(
            FunnelStep.parse(s)
            for s in (
                "screen:loan_application",
                "event:form_start",
                "event:form_submit",
                "event:conversion",
            )
        ),
        30 * 60_000,
    ),
    Funnel(
        "transfer",
        tuple(FunnelStep.parse(s) for s in ("screen:transfer", "screen:transfer_confirm")),
        15 * 60_000,
    ),
)


class JourneyConfig(msgspec.Struct, frozen=True):
    """What a journeys shard needs to know."""

    prefix: str
    gap_ms: int = 30 * 60_000
    allowed_lateness_ms: int = 5 * 60_000
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


class JourneyBatchResult(msgspec.Struct, gc=False):
    """What one batch of a journeys shard changed."""

    figures: FigureDeltas
    minutes: dict[int, dict[str, int]]
    """Per-minute deltas (active customers, sessions started and converted) by minute."""
    sessions: list[SessionRecord]
    pipeline: dict[str, int]
    archive: list[ArchiveObject] = []
    """Objects of the archive's ``sessions`` table to write now (filled by the shim)."""


class JourneySnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of a journeys shard."""

    version: int
    newest_ms: int
    open_events: dict[str, list[SessionEvent]]
    closed_end: dict[str, int]
    active_minutes: dict[int, list[str]]
    upstream_ms: int


@functools.lru_cache(maxsize=1024)
def day_label(day_index: int) -> str:
    """The UTC day ``YYYY-MM-DD`` of a day index (epoch ms // 86,400,000)."""
    return datetime.fromtimestamp(day_index * 86_400, UTC).strftime("%Y-%m-%d")


def _day(ms: int) -> tuple[int, str]:
    index = ms // DAY_MS
    return index, day_label(index)


class Journeys:
    """Sessions and figures of the identities of one journeys shard."""

    def __init__(self, config: JourneyConfig, snapshot: bytes | None = None) -> None:
        """Create the shard, empty or from a snapshot."""
        self._config = config
        self._prefix = config.prefix
        self.newest_ms = -(2**62)
        self.open: dict[str, IdentitySessions] = {}
        self._closed_end: dict[str, int] = {}
        self._active: dict[int, set[str]] = {}
        self._due: list[tuple[int, str]] = []
        self.upstream_ms = -(2**62)
        if snapshot is not None:
            state = decode_snapshot(snapshot, JourneySnapshot, SNAPSHOT_VERSION)
            self.newest_ms = state.newest_ms
            self.open = {
                i: IdentitySessions(i, config.gap_ms, list(events))
                for i, events in state.open_events.items()
            }
            self._closed_end = dict(state.closed_end)
            self._active = {m: set(ids) for m, ids in state.active_minutes.items()}
            self.upstream_ms = state.upstream_ms
            self._due = [(s.events[-1].event_ms + config.gap_ms, i) for i, s in self.open.items()]
            heapq.heapify(self._due)

    @property
    def safe_ms(self) -> int:
        """Every event still to come for a session of this shard is at or after this time.

        The identity shards' watermark (the input's progress less the allowed lateness), less
        the time anonymous events may still take to be stitched there.
        """
        return self.upstream_ms - self._config.stitch_allowance_ms

    def process(
        self,
        items: Iterable[tuple[str, SessionEvent]],
        segments: SegmentLookup,
        upstream_ms: int,
    ) -> JourneyBatchResult:
        """Take (identity, event) items; return figure deltas and closed sessions.

        ``upstream_ms`` is the sending identity shards' watermark; they all share the input's
        progress, so the newest one received is how far the input has got.
        """
        batch = items if isinstance(items, list) else list(items)
        customers = {i for i, _ in batch if not i.startswith(DEVICE_PREFIX)}
        segment_of = segments(customers) if customers else {}
        figures: FigureDeltas = {}
        late = 0
        gap = self._config.gap_ms
        newest = self.newest_ms
        active = self._active
        # Counted per batch, then turned into keys once per distinct value.
        cross_sections: list[tuple[int, str | None, str | None, str | None, str, str]] = []
        screens: list[tuple[int, str]] = []
        errors: list[tuple[int, str]] = []
        active_minutes: list[int] = []
        upstream = max(self.upstream_ms, upstream_ms)
        for identity, event in batch:
            event_ms = event.event_ms
            if event_ms > newest:
                newest = event_ms
            day_index = event_ms // DAY_MS
            if not identity.startswith(DEVICE_PREFIX):
                minute = event_ms // MINUTE_MS
                seen = active.get(minute)
                if seen is None:
                    seen = active[minute] = set()
                if identity not in seen:
                    seen.add(identity)
                    active_minutes.append(minute)
            cross_sections.append(
                (day_index, event.os, event.app_version, event.app, event.channel,
                 segment_of.get(identity, UNKNOWN))
            )  # fmt: skip
            event_type = event.event_type
            if event_type == "screen_view":
                if event.screen:
                    screens.append((day_index, event.screen))
            elif event_type == "error":
                errors.append((day_index, event.error_code or event.screen or UNKNOWN))
            if event.channel not in SESSION_CHANNELS:
                continue
            closed_end = self._closed_end.get(identity)
            if closed_end is not None and event_ms <= closed_end + gap:
                late += 1
                continue
            sessions = self.open.get(identity)
            if sessions is None:
                sessions = self.open[identity] = IdentitySessions(identity, gap)
                sessions.add((event,))
                # One entry per open identity; a later event moves its due time lazily.
                heapq.heappush(self._due, (event_ms + gap, identity))
            else:
                sessions.add((event,))
        self.newest_ms = newest
        self.upstream_ms = upstream
        minutes: dict[int, dict[str, int]] = {}
        self._event_figures(figures, minutes, cross_sections, screens, errors, active_minutes)
        records = self._close(figures, minutes, segments)
        pipeline = {"late_for_sessions": late} if late else {}
        return JourneyBatchResult(figures, minutes, records, pipeline)

    def _event_figures(
        self,
        figures: FigureDeltas,
        minutes: dict[int, dict[str, int]],
        cross_sections: list[tuple[int, str | None, str | None, str | None, str, str]],
        screens: list[tuple[int, str]],
        errors: list[tuple[int, str]],
        active_minutes: list[int],
    ) -> None:
        prefix = self._prefix
        for minute, n in Counter(active_minutes).items():
            per_minute = minutes.setdefault(minute * MINUTE_MS, {})
            per_minute["active_customers"] = per_minute.get("active_customers", 0) + n
        for (day_index, os, app_version, app, channel, segment), n in Counter(
            cross_sections
        ).items():
            base = f"{prefix}:day:{day_label(day_index)}:by_"
            values = (
                os or UNKNOWN,
                app_version or UNKNOWN,
                app or UNKNOWN,
                channel,
                segment,
                "all",
            )
            for dimension, value in zip(DIMENSIONS, values, strict=True):
                count(figures, (HASH, f"{base}{dimension}:events", day_index), value, n)
        for (day_index, screen), n in Counter(screens).items():
            key = f"{prefix}:day:{day_label(day_index)}:top:screens"
            count(figures, (ZSET, key, day_index), screen, n)
        for (day_index, error), n in Counter(errors).items():
            key = f"{prefix}:day:{day_label(day_index)}:top:errors"
            count(figures, (ZSET, key, day_index), error, n)

    def flush(self, segments: SegmentLookup) -> JourneyBatchResult:
        """At the end of a bounded input: close every open session."""
        figures: FigureDeltas = {}
        minutes: dict[int, dict[str, int]] = {}
        records = self._close(figures, minutes, segments, safe=2**62)
        return JourneyBatchResult(figures, minutes, records, {})

    @staticmethod
    def _dimensions(event: SessionEvent, segment: str) -> dict[str, str]:
        values = (event.os, event.app_version, event.app, event.channel, segment, "all")
        return {d: v or UNKNOWN for d, v in zip(DIMENSIONS, values, strict=True)}

    def _close(
        self,
        figures: FigureDeltas,
        minutes: dict[int, dict[str, int]],
        segments: SegmentLookup,
        safe: int | None = None,
    ) -> list[SessionRecord]:
        safe = self.safe_ms if safe is None else safe
        gap = self._config.gap_ms
        closed: list[ClosedSession] = []
        while self._due and self._due[0][0] < safe:
            due, identity = heapq.heappop(self._due)
            sessions = self.open.get(identity)
            if sessions is None:
                continue
            current = sessions.events[-1].event_ms + gap
            if current > due:
                heapq.heappush(self._due, (current, identity))  # it had later events
                continue
            for session in sessions.close(safe):
                closed.append(session)
                self._closed_end[identity] = session.end_ms
            if sessions.events:
                heapq.heappush(self._due, (sessions.events[-1].event_ms + gap, identity))
            else:
                del self.open[identity]
        self._forget(min(safe, self.safe_ms))
        if not closed:
            return []
        customers = {s.identity for s in closed if not s.identity.startswith(DEVICE_PREFIX)}
        segment_of = segments(customers) if customers else {}
        records = [
            session_record(session, segment_of.get(session.identity, UNKNOWN)) for session in closed
        ]
        self._session_figures(figures, minutes, records, closed)
        return records

    def _forget(self, safe: int) -> None:
        """Free what no future event can touch: idle identities' last session ends, minutes."""
        horizon = safe - DAY_MS
        for identity in [i for i, end in self._closed_end.items() if end < horizon]:
            del self._closed_end[identity]
        oldest_minute = (safe - self._config.gap_ms) // MINUTE_MS - 60
        for minute in [m for m in self._active if m < oldest_minute]:
            del self._active[minute]

    def _session_figures(
        self,
        figures: FigureDeltas,
        minutes: dict[int, dict[str, int]],
        records: list[SessionRecord],
        sessions: list[ClosedSession],
    ) -> None:
        """Tally every closed session's figures, then turn them into keys once per batch."""
        tally: Counter[tuple[str, int, str, str]] = Counter()
        started: Counter[tuple[int, str]] = Counter()
        for session, record in zip(sessions, records, strict=True):
            day = session.start_ms // DAY_MS
            converted = int(record.converted)
            minute = session.start_ms // MINUTE_MS
            started[(minute, "sessions_started")] += 1
            started[(minute, "sessions_converted")] += converted
            first = session.events[0]
            for dimension, value in self._dimensions(first, record.segment).items():
                tally[(HASH, day, f"by_{dimension}:sessions", value)] += 1
                tally[(HASH, day, f"by_{dimension}:conversions", value)] += converted
            if record.exit_screen:
                tally[(ZSET, day, "top:exit_screens", record.exit_screen)] += 1
            screens: set[str] = set()
            buttons: set[str] = set()
            started_forms: set[str] = set()
            submitted: set[str] = set()
            previous_screen: str | None = None
            for event in session.events:
                event_type = event.event_type
                if event_type == "screen_view" and event.screen:
                    screens.add(event.screen)
                    if previous_screen is not None and previous_screen != event.screen:
                        tally[(ZSET, day, "transitions", f"{previous_screen}|{event.screen}")] += 1
                    previous_screen = event.screen
                elif event_type == "click" and event.element:
                    buttons.add(f"{event.screen or UNKNOWN}|{event.element}")
                elif event_type == "form_start" and event.form:
                    started_forms.add(event.form)
                elif event_type == "form_submit" and event.form:
                    submitted.add(event.form)
            for screen in screens:
                tally[(HASH, day, "screen:sessions", screen)] += 1
                tally[(HASH, day, "screen:conversions", screen)] += converted
            for button in buttons:
                tally[(HASH, day, "button:sessions", button)] += 1
                tally[(HASH, day, "button:conversions", button)] += converted
            for form in started_forms:
                tally[(HASH, day, "form:started", form)] += 1
                tally[(HASH, day, "form:submitted", form)] += int(form in submitted)
            for form in abandoned_forms(session.events) if started_forms else ():
                tally[(ZSET, day, "top:abandoned_forms", form)] += 1
            for element in rage_clicks(session.events) if buttons else ():
                tally[(ZSET, day, "top:rage_clicks", element)] += 1
            for funnel in self._config.funnels:
                for step in range(1, funnel.reached(session.events) + 1):
                    tally[(HASH, day, f"funnel:{funnel.name}", f"step_{step}")] += 1
        prefix = self._prefix
        for (minute, field), n in started.items():
            per_minute = minutes.setdefault(minute * MINUTE_MS, {})
            per_minute[field] = per_minute.get(field, 0) + n
        for (kind, day, family, field), n in tally.items():
            count(figures, (kind, f"{prefix}:day:{day_label(day)}:{family}", day), field, n)

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(
            JourneySnapshot(
                SNAPSHOT_VERSION,
                self.newest_ms,
                {i: list(s.events) for i, s in self.open.items()},
                dict(self._closed_end),
                {m: sorted(ids) for m, ids in self._active.items()},
                self.upstream_ms,
            )
        )


def abandoned_forms(events: Iterable[SessionEvent]) -> list[str]:
    """Forms started with no submit of the same form later in the session (once per start)."""
    ordered = list(events)
    abandoned = []
    for index, event in enumerate(ordered):
        if event.event_type != "form_start" or not event.form:
            continue
        later = ordered[index + 1 :]
        if not any(e.event_type == "form_submit" and e.form == event.form for e in later):
            abandoned.append(event.form)
    return abandoned


def rage_clicks(events: Iterable[SessionEvent]) -> list[str]:
    """``screen|element`` of every burst of more than 3 clicks within 1 second (once a burst)."""
    by_target: dict[str, list[int]] = {}
    for event in events:
        if event.event_type == "click" and event.element:
            by_target.setdefault(f"{event.screen or UNKNOWN}|{event.element}", []).append(
                event.event_ms
            )
    bursts = []
    for target, times in by_target.items():
        index = 0
        while index < len(times):
            end = index
            while end + 1 < len(times) and times[end + 1] - times[index] <= RAGE_WINDOW_MS:
                end += 1
            if end - index + 1 > RAGE_CLICKS:
                bursts.append(target)
                index = end + 1
            else:
                index += 1
    return bursts


def session_record(session: ClosedSession, segment: str) -> SessionRecord:
    """The archive record of a closed session."""
    events = session.events
    first = events[0]
    customer = None if session.identity.startswith(DEVICE_PREFIX) else session.identity
    absorbed: dict[str, str] = {}
    if customer is not None:
        for event in events:
            if event.customer_id is None and event.device_id and event.device_id not in absorbed:
                absorbed[event.device_id] = session_id(
                    device_identity(event.device_id), event.event_ms, event.event_id
                )
    screens = tuple(e.screen for e in events if e.event_type == "screen_view" and e.screen)
    return SessionRecord(
        session_id=session.session_id,
        identity=session.identity,
        customer_id=customer,
        absorbed_session_ids=tuple(absorbed.values()),
        devices=tuple(sorted({e.device_id for e in events if e.device_id})),
        start_ms=session.start_ms,
        end_ms=session.end_ms,
        duration_ms=session.end_ms - session.start_ms,
        event_count=len(events),
        screens=screens,
        exit_screen=session.exit_screen,
        converted=session.converted,
        app=first.app,
        os=first.os,
        app_version=first.app_version,
        channel=first.channel,
        segment=segment if customer is not None else UNKNOWN,
    )
