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
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable

import msgspec

from operators.clock import ENDLESS, NEVER
from operators.identity import device_identity
from operators.sessions import ClosedSession, IdentitySessions, SessionEvent, session_id
from operators.totals import HASH, NO_DAY, ZSET, FigureDeltas, Ratio, add_deltas, count
from state import redis_keys as rk
from state.archive_layout import DEVICE_PREFIX
from state.redis_keys import DIMENSIONS, by_dimension, day_key
from state.snapshots import decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 1
DAY_MS = 86_400_000
MINUTE_MS = 60_000
RAGE_CLICKS = 3
"""More than this many clicks on one screen and element within a second is a rage click."""
RAGE_WINDOW_MS = 1000
SESSION_CHANNELS = frozenset({"mobile", "web"})
UNKNOWN = "unknown"

RATIOS = (
    Ratio("conversions", "sessions", rk.CONVERSION_RATE),
    Ratio("submitted", "started", rk.COMPLETION_RATE),
)

CrossSection = tuple[int, str | None, str | None, str | None, str, str]
"""(day index, os, app version, app, channel, segment) of one event."""

_identity_of = operator.itemgetter(0)

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

    def may_start(self, screens: set[str]) -> bool:
        """Whether a session with these screens viewed may reach step 1 (a quick pre-check)."""
        first = self.steps[0]
        return first.kind != "screen" or first.name in screens

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
    """Recoverable state of a journeys shard."""

    version: int
    newest_ms: int
    open_events: dict[str, list[SessionEvent]]
    closed_end: dict[str, int]
    active_minutes: dict[int, list[str]]
    upstream_ms: int


day_label = functools.lru_cache(maxsize=1024)(rk.day_label)


def _day(ms: int) -> tuple[int, str]:
    index = ms // DAY_MS
    return index, day_label(index)


class Journeys:
    """Sessions and figures of the identities of one journeys shard."""

    def __init__(self, config: JourneyConfig, snapshot: bytes | None = None) -> None:
        """Create the shard, empty or from a snapshot."""
        self._config = config
        self._prefix = config.prefix
        self.newest_ms = NEVER
        self.open: dict[str, IdentitySessions] = {}
        self._closed_end: dict[str, int] = {}
        self._active: dict[int, set[str]] = {}
        self._due: list[tuple[int, str]] = []
        self._due_at: dict[str, int] = {}
        """Identity → when its earliest open session may close (its live entry in the heap)."""
        self.upstream_ms = NEVER
        self._open_from_minute: int | None = None
        self._open_from = ENDLESS
        self._forgot_below = NEVER
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
            for identity, sessions in self.open.items():
                if sessions.events:
                    self._schedule(identity, sessions.first_end_ms() + config.gap_ms)

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
        customers = {i for i in set(map(_identity_of, batch)) if not i.startswith(DEVICE_PREFIX)}
        segment_of = segments(customers) if customers else {}
        figures: FigureDeltas = {}
        late = 0
        gap = self._config.gap_ms
        newest = self.newest_ms
        active = self._active
        open_sessions = self.open
        closed_ends = self._closed_end
        due_at = self._due_at
        # Counted per batch, then turned into keys once per distinct value.
        cross_sections: list[CrossSection] = []
        screens: list[tuple[int, str]] = []
        errors: list[tuple[int, str]] = []
        active_minutes: list[int] = []
        upstream = max(self.upstream_ms, upstream_ms)
        for identity, event in batch:
            event_ms = event.event_ms
            if event_ms > newest:
                newest = event_ms
            day_index = event_ms // DAY_MS
            if identity in customers:
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
            closed_end = closed_ends.get(identity)
            if closed_end is not None and event_ms <= closed_end + gap:
                late += 1
                continue
            sessions = open_sessions.get(identity)
            if sessions is None:
                open_sessions[identity] = IdentitySessions(identity, gap, [event])
                # One entry per open identity; a later event moves its due time lazily.
                self._schedule(identity, event_ms + gap)
            elif sessions.add_one(event) and event_ms + gap < due_at.get(identity, ENDLESS):
                # An older event (stitched late) may end an earlier session: sooner.
                self._schedule(identity, event_ms + gap)
        self.newest_ms = newest
        self.upstream_ms = upstream
        minutes: dict[int, dict[str, int]] = {}
        for minute, n in Counter(active_minutes).items():
            minutes[minute * MINUTE_MS] = {"active_customers": n}
        self._event_figures(figures, cross_sections, screens, errors)
        records = self._close(figures, minutes, segments)
        pipeline = {"late_for_sessions": late} if late else {}
        return JourneyBatchResult(figures, minutes, records, pipeline)

    def _event_figures(
        self,
        figures: FigureDeltas,
        cross_sections: list[CrossSection],
        screens: list[tuple[int, str]],
        errors: list[tuple[int, str]],
    ) -> None:
        prefix = self._prefix
        by_day: dict[int, list[CrossSection]]
        days = {row[0] for row in cross_sections}
        if len(days) == 1:
            by_day = {days.pop(): cross_sections}
        else:
            by_day = {}
            for row in cross_sections:
                by_day.setdefault(row[0], []).append(row)
        for day_index, rows in by_day.items():
            label = day_label(day_index)
            # One column per dimension, counted in C.
            columns = list(zip(*rows, strict=True))[1:]
            for dimension, column in zip(DIMENSIONS, columns, strict=False):
                tally = Counter(column)
                missing = tally.pop(None, 0)
                if missing:
                    tally[UNKNOWN] += missing
                key = day_key(prefix, label, by_dimension(dimension, "events"))
                add_deltas(figures, (HASH, key, day_index), tally)
            key = day_key(prefix, label, by_dimension("all", "events"))
            count(figures, (HASH, key, day_index), "all", len(rows))
            month = (HASH, rk.month_key(prefix, label[:7], "events"), day_index)
            count(figures, month, label[8:], len(rows))
            count(figures, (ZSET, rk.days_key(prefix), NO_DAY), label, len(rows))
        for (day_index, screen), n in Counter(screens).items():
            key = day_key(prefix, day_label(day_index), rk.TOP_SCREENS)
            count(figures, (ZSET, key, day_index), screen, n)
        for (day_index, error), n in Counter(errors).items():
            key = day_key(prefix, day_label(day_index), rk.TOP_ERRORS)
            count(figures, (ZSET, key, day_index), error, n)

    def flush(self, segments: SegmentLookup) -> JourneyBatchResult:
        """At the end of a bounded input: close every open session."""
        figures: FigureDeltas = {}
        minutes: dict[int, dict[str, int]] = {}
        records = self._close(figures, minutes, segments, safe=ENDLESS)
        self._open_from_minute = None
        return JourneyBatchResult(figures, minutes, records, {})

    def open_from_ms(self) -> int:
        """A time no open session here starts before: the per-minute session figures of earlier
        minutes are final as far as this shard goes.

        Looked up once per minute of progress (a pass over the open identities); in between,
        sessions close (the bound only rises) and new ones start at or after the watermark the
        per-minute series also waits for, so the value looked up stays a bound.
        """
        minute = self.upstream_ms // MINUTE_MS
        if minute != self._open_from_minute:
            self._open_from_minute = minute
            self._open_from = min(
                (s.events[0].event_ms for s in self.open.values() if s.events), default=ENDLESS
            )
        return self._open_from

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
        # Each identity's earliest session closes as soon as the watermark is past its end by
        # the gap, whatever later events of the identity have arrived by then: the moment it
        # closes (and so the archive object it lands in) depends on the input, not on timing.
        while self._due and self._due[0][0] < safe:
            due, identity = heapq.heappop(self._due)
            if self._due_at.get(identity) != due:
                continue  # replaced by a newer entry
            del self._due_at[identity]
            sessions = self.open.get(identity)
            if sessions is None:
                continue
            current = sessions.first_end_ms() + gap
            if current > due:
                self._schedule(identity, current)  # its first session grew
                continue
            for session in sessions.close(safe):
                closed.append(session)
                self._closed_end[identity] = session.end_ms
            if sessions.events:
                self._schedule(identity, sessions.first_end_ms() + gap)
            else:
                del self.open[identity]
        self._forget(min(safe, self.safe_ms))
        if not closed:
            return []
        customers = {s.identity for s in closed if not s.identity.startswith(DEVICE_PREFIX)}
        segment_of = segments(customers) if customers else {}
        tally = SessionTally(self._config.funnels)
        records = [tally.add(s, segment_of.get(s.identity, UNKNOWN)) for s in closed]
        tally.into(figures, minutes, self._prefix)
        return records

    def _schedule(self, identity: str, when: int) -> None:
        """Look at ``identity``'s earliest session again when the watermark passes ``when``."""
        if self._due_at.get(identity) != when:
            self._due_at[identity] = when
            heapq.heappush(self._due, (when, identity))

    def _forget(self, safe: int) -> None:
        """Free what no future event can touch: idle identities' last session ends, minutes.

        A full pass runs when the oldest minute kept moves, not every batch.
        """
        oldest_minute = (safe - self._config.gap_ms) // MINUTE_MS - 60
        if oldest_minute <= self._forgot_below:
            return
        self._forgot_below = oldest_minute
        horizon = safe - DAY_MS
        for identity in [i for i, end in self._closed_end.items() if end < horizon]:
            del self._closed_end[identity]
        for minute in [m for m in self._active if m < oldest_minute]:
            del self._active[minute]

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
    return [target for target, times in by_target.items() for _ in range(bursts(times))]


def bursts(times: list[int]) -> int:
    """How many bursts of more than 3 clicks within 1 second these click times (sorted) hold."""
    found = 0
    index = 0
    while index < len(times):
        end = index
        while end + 1 < len(times) and times[end + 1] - times[index] <= RAGE_WINDOW_MS:
            end += 1
        if end - index + 1 > RAGE_CLICKS:
            found += 1
            index = end + 1
        else:
            index += 1
    return found


_DIMENSION_FAMILIES = tuple(
    (by_dimension(d, "sessions"), by_dimension(d, "conversions")) for d in DIMENSIONS
)


class SessionTally:
    """Closed sessions' records and figures, in one pass over each session's events.

    Figures are collected as keys to add one to; a conversion figure of a session that did not
    convert is still a field (with 0), so that rates have their denominator's every field.
    """

    def __init__(self, funnels: tuple[Funnel, ...]) -> None:
        """An empty tally for a batch of closed sessions."""
        self._funnels = funnels
        self._step_fields = tuple(
            f"step_{step}" for step in range(1, max((len(f.steps) for f in funnels), default=0) + 1)
        )
        self._days: dict[int, dict[tuple[str, str], list[str]]] = {}
        """Day index → (redis type, key family) → the fields to add one to (counted once, in
        :meth:`into`: a list extend per session is cheaper than a Counter update)."""
        self._started: list[int] = []
        self._converted: list[int] = []
        self._dimensions: list[tuple[int, str | None, str | None, str | None, str, str, bool]] = []

    def add(self, session: ClosedSession, segment: str) -> SessionRecord:
        """Count one closed session; return its archive record."""
        events = session.events
        first = events[0]
        identity = session.identity
        customer = None if identity.startswith(DEVICE_PREFIX) else identity
        path: list[str] = []
        exit_screen: str | None = None
        converted = False
        devices: set[str] = set()
        absorbed: dict[str, str] = {}
        clicks: dict[str, list[int]] = {}
        started: set[str] = set()
        submitted: set[str] = set()
        last_device: str | None = None
        for event in events:
            event_type = event.event_type
            if event_type == "screen_view":
                exit_screen = event.screen
                if exit_screen:
                    path.append(exit_screen)
            elif event_type == "click":
                if event.element:
                    target = f"{event.screen or UNKNOWN}|{event.element}"
                    times = clicks.get(target)
                    if times is None:
                        clicks[target] = [event.event_ms]
                    else:
                        times.append(event.event_ms)
            elif event_type == "conversion":
                converted = True
            elif event_type == "form_start":
                if event.form:
                    started.add(event.form)
            elif event_type == "form_submit" and event.form:
                submitted.add(event.form)
            device = event.device_id
            if device:
                if device != last_device:
                    devices.add(device)
                    last_device = device
                if customer is not None and event.customer_id is None and device not in absorbed:
                    absorbed[device] = session_id(
                        device_identity(device), event.event_ms, event.event_id
                    )
        segment = segment if customer is not None else UNKNOWN
        record = SessionRecord(
            session_id=session.session_id,
            identity=identity,
            customer_id=customer,
            absorbed_session_ids=tuple(absorbed.values()),
            devices=tuple(sorted(devices)),
            start_ms=session.start_ms,
            end_ms=session.end_ms,
            duration_ms=session.end_ms - session.start_ms,
            event_count=len(events),
            screens=tuple(path),
            exit_screen=exit_screen,
            converted=converted,
            app=first.app,
            os=first.os,
            app_version=first.app_version,
            channel=first.channel,
            segment=segment,
            event_ids=tuple([e.event_id for e in events]),
        )
        self._count(record, first, path, clicks, started, submitted, events)
        return record

    def _count(
        self,
        record: SessionRecord,
        first: SessionEvent,
        path: list[str],
        clicks: dict[str, list[int]],
        started: set[str],
        submitted: set[str],
        events: tuple[SessionEvent, ...],
    ) -> None:
        day = record.start_ms // DAY_MS
        converted = record.converted
        self._started.append(record.start_ms // MINUTE_MS)
        if converted:
            self._converted.append(record.start_ms // MINUTE_MS)
        # Expanded into the six by-dimension hashes once per distinct value (see into()).
        self._dimensions.append(
            (day, first.os, first.app_version, first.app, first.channel, record.segment,
             converted)
        )  # fmt: skip
        families = self._days.get(day)
        if families is None:
            families = self._days[day] = {family: [] for family in _SESSION_FAMILIES}
        if record.exit_screen:
            families[_EXIT_SCREENS].append(record.exit_screen)
        if len(path) > 1:
            families[_TRANSITIONS].extend(
                [f"{previous}|{screen}" for previous, screen in itertools.pairwise(path)
                 if previous != screen]
            )  # fmt: skip
        screens = set(path)
        families[_SCREEN_SESSIONS].extend(screens)
        if converted:
            families[_SCREEN_CONVERSIONS].extend(screens)
        if clicks:
            families[_BUTTON_SESSIONS].extend(clicks)
            if converted:
                families[_BUTTON_CONVERSIONS].extend(clicks)
            for button, times in clicks.items():
                if len(times) > RAGE_CLICKS:
                    found = bursts(times)
                    if found:
                        families[_RAGE_CLICKS].extend([button] * found)
        if started:
            families[_FORMS_STARTED].extend(started)
            families[_FORMS_SUBMITTED].extend(started & submitted)
            families[_ABANDONED_FORMS].extend(abandoned_forms(events))
        for funnel in self._funnels:
            if funnel.may_start(screens):
                reached = funnel.reached(events)
                if reached:
                    funnel_family = families.get((HASH, rk.funnel(funnel.name)))
                    if funnel_family is None:
                        funnel_family = families[(HASH, rk.funnel(funnel.name))] = []
                    funnel_family.extend(self._step_fields[:reached])

    def into(self, figures: FigureDeltas, minutes: dict[int, dict[str, int]], prefix: str) -> None:
        """Add the tallied figures to a batch's deltas."""
        for minute, n in Counter(self._started).items():
            per_minute = minutes.setdefault(minute * MINUTE_MS, {})
            per_minute["sessions_started"] = per_minute.get("sessions_started", 0) + n
            per_minute["sessions_converted"] = per_minute.get("sessions_converted", 0)
        for minute, n in Counter(self._converted).items():
            per_minute = minutes[minute * MINUTE_MS]
            per_minute["sessions_converted"] += n
        days = {
            day: {family: Counter(fields) for family, fields in families.items()}
            for day, families in self._days.items()
        }
        for (day, *values, converted), n in Counter(self._dimensions).items():
            families = days[day]
            values.append("all")
            for (sessions_family, conversions_family), value in zip(
                _DIMENSION_KEYS, values, strict=True
            ):
                field = value or UNKNOWN
                families[sessions_family][field] += n
                families[conversions_family][field] += n if converted else 0
        for day, families in days.items():
            # A conversion figure has a field (0 if need be) for every field of its base.
            for base, part in _PARTS:
                part_counts = families[part]
                for field in families[base].keys() - part_counts.keys():
                    part_counts[field] = 0
            label = day_label(day)
            for (kind, family), counts in families.items():
                if counts:
                    add_deltas(figures, (kind, day_key(prefix, label, family), day), counts)
            # The day-of-month view of the month: the day's sessions and conversions.
            for figure, of_day in _MONTH_FAMILIES:
                month = (HASH, rk.month_key(prefix, label[:7], figure), day)
                count(figures, month, label[8:], families[of_day]["all"])


_EXIT_SCREENS = (ZSET, rk.TOP_EXIT_SCREENS)
_TRANSITIONS = (ZSET, rk.TRANSITIONS)
_SCREEN_SESSIONS = (HASH, rk.SCREEN_SESSIONS)
_SCREEN_CONVERSIONS = (HASH, rk.SCREEN_CONVERSIONS)
_BUTTON_SESSIONS = (HASH, rk.BUTTON_SESSIONS)
_BUTTON_CONVERSIONS = (HASH, rk.BUTTON_CONVERSIONS)
_RAGE_CLICKS = (ZSET, rk.TOP_RAGE_CLICKS)
_FORMS_STARTED = (HASH, rk.FORMS_STARTED)
_FORMS_SUBMITTED = (HASH, rk.FORMS_SUBMITTED)
_ABANDONED_FORMS = (ZSET, rk.TOP_ABANDONED_FORMS)
_DIMENSION_KEYS = tuple(
    ((HASH, sessions), (HASH, conversions)) for sessions, conversions in _DIMENSION_FAMILIES
)
_MONTH_FAMILIES: tuple[tuple[str, tuple[str, str]], ...] = (
    ("sessions", (HASH, by_dimension("all", "sessions"))),
    ("conversions", (HASH, by_dimension("all", "conversions"))),
)
_PARTS = (
    *_DIMENSION_KEYS,
    (_SCREEN_SESSIONS, _SCREEN_CONVERSIONS),
    (_BUTTON_SESSIONS, _BUTTON_CONVERSIONS),
    (_FORMS_STARTED, _FORMS_SUBMITTED),
)
"""(base, part) families: the part has a field for every field of the base."""
_SESSION_FAMILIES = (
    _EXIT_SCREENS, _TRANSITIONS, _RAGE_CLICKS, _ABANDONED_FORMS,
    *(family for pair in _PARTS for family in pair),
)  # fmt: skip
