"""PRODUCT.md's journey definitions, computed plainly over a whole input (standard library only).

Shares no code with the job. Every figure is by UTC event time; session figures by the day of the
session's first event; a session's dimensions are those of its first event; its segment is the
customer's (or ``unknown``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.reference import parse_time

GAP_MS = 30 * 60_000
APP_CHANNELS = {"mobile", "web"}
FUNNELS = {
    "loan_application": (
        ["screen:loan_application", "event:form_start", "event:form_submit", "event:conversion"],
        30 * 60_000,
    ),
    "transfer": (["screen:transfer", "screen:transfer_confirm"], 15 * 60_000),
}


@dataclass(frozen=True)
class E:
    """An event reduced to what the definitions use."""

    ms: int
    event_id: str
    event_type: str
    channel: str
    customer_id: str | None
    device_id: str | None
    screen: str | None
    element: str | None
    form: str | None
    os: str | None
    app: str | None
    app_version: str | None
    error_code: str | None


def to_e(event: dict[str, Any]) -> E:
    moment = parse_time(event["event_time"])
    assert moment is not None
    props = event.get("properties") or {}
    code = props.get("error_code") if event["event_type"] == "error" else None
    return E(
        int(moment.timestamp() * 1000), event["event_id"], event["event_type"], event["channel"],
        event.get("customer_id"), event.get("device_id"), event.get("screen"),
        event.get("element"), event.get("form"), event.get("os"), event.get("app"),
        event.get("app_version"), None if code is None else str(code),
    )  # fmt: skip


def identities(events: list[E]) -> dict[str, str]:
    """event_id → identity, per the definition."""
    result: dict[str, str] = {}
    by_device: dict[str, list[E]] = defaultdict(list)
    for e in events:
        if e.device_id is not None:
            by_device[e.device_id].append(e)
        if e.customer_id is not None:
            result[e.event_id] = e.customer_id
    for device, own in by_device.items():
        own.sort(key=lambda e: (e.ms, e.event_id))
        last_login: str | None = None
        for index, e in enumerate(own):
            if e.event_type == "login" and e.customer_id is not None:
                last_login = e.customer_id
            if e.customer_id is not None:
                continue
            if last_login is not None:
                result[e.event_id] = last_login
                continue
            identity = f"device:{device}"
            previous = e.ms
            for later in own[index + 1 :]:
                if later.ms - previous > GAP_MS:
                    break
                previous = later.ms
                if later.event_type == "login" and later.customer_id is not None:
                    identity = later.customer_id
                    break
            result[e.event_id] = identity
    return result


@dataclass
class Session:
    identity: str
    events: list[E]

    @property
    def sid(self) -> str:
        first = self.events[0]
        text = f"{self.identity}\x1f{first.ms}\x1f{first.event_id}".encode()
        return hashlib.blake2b(text, digest_size=10).hexdigest()

    @property
    def converted(self) -> bool:
        return any(e.event_type == "conversion" for e in self.events)


def sessions(events: list[E], identity_of: dict[str, str]) -> list[Session]:
    by_identity: dict[str, list[E]] = defaultdict(list)
    for e in events:
        if e.channel in APP_CHANNELS:
            by_identity[identity_of[e.event_id]].append(e)
    result = []
    for identity, own in by_identity.items():
        own.sort(key=lambda e: (e.ms, e.event_id))
        current = [own[0]]
        for e in own[1:]:
            if e.ms - current[-1].ms > GAP_MS:
                result.append(Session(identity, current))
                current = []
            current.append(e)
        result.append(Session(identity, current))
    return result


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def minute(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def funnel_reached(steps: list[str], window_ms: int, events: list[E]) -> int:
    def matches(step: str, e: E) -> bool:
        kind, name = step.split(":", 1)
        if kind == "screen":
            return e.event_type == "screen_view" and e.screen == name
        return e.event_type == name

    best = 0
    for start, first in enumerate(events):
        if not matches(steps[0], first):
            continue
        reached = 1
        for e in events[start + 1 :]:
            if reached == len(steps) or e.ms - first.ms > window_ms:
                break
            if matches(steps[reached], e):
                reached += 1
        best = max(best, reached)
    return best


@dataclass
class Figures:
    """Every Redis figure the journeys write, keyed by Redis key, then field."""

    hashes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    zsets: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    session_list: list[Session] = field(default_factory=list)


def figures(
    valid_unique: dict[str, dict[str, Any]], segment_of: dict[str, str], prefix: str
) -> Figures:
    events = [to_e(e) for e in valid_unique.values()]
    identity_of = identities(events)
    out = Figures()

    def seg(identity: str) -> str:
        if identity.startswith("device:"):
            return "unknown"
        return segment_of.get(identity, "unknown")

    active: dict[str, set[str]] = defaultdict(set)
    for e in events:
        identity = identity_of[e.event_id]
        if not identity.startswith("device:"):
            active[minute(e.ms)].add(identity)
        dims = {"os": e.os or "unknown", "app_version": e.app_version or "unknown",
                "app": e.app or "unknown", "channel": e.channel, "segment": seg(identity),
                "all": "all"}  # fmt: skip
        for dim, value in dims.items():
            out.hashes[f"{prefix}:day:{day(e.ms)}:by_{dim}:events"][value] += 1
        # The month's day-of-month view, and the days that have figures.
        out.hashes[f"{prefix}:month:{day(e.ms)[:7]}:events"][day(e.ms)[8:]] += 1
        out.zsets[f"{prefix}:days"][day(e.ms)] += 1
        if e.event_type == "screen_view" and e.screen:
            out.zsets[f"{prefix}:day:{day(e.ms)}:top:screens"][e.screen] += 1
        elif e.event_type == "error":
            out.zsets[f"{prefix}:day:{day(e.ms)}:top:errors"][
                e.error_code or e.screen or "unknown"
            ] += 1
    for m, who in active.items():
        out.hashes[f"{prefix}:minute:journeys:{m}"]["active_customers"] = len(who)

    for s in sessions(events, identity_of):
        out.session_list.append(s)
        first = s.events[0]
        base = f"{prefix}:day:{day(first.ms)}"
        started = out.hashes[f"{prefix}:minute:journeys:{minute(first.ms)}"]
        started["sessions_started"] += 1
        started["sessions_converted"] += int(s.converted)
        dims = {"os": first.os or "unknown", "app_version": first.app_version or "unknown",
                "app": first.app or "unknown", "channel": first.channel,
                "segment": seg(s.identity), "all": "all"}  # fmt: skip
        for dim, value in dims.items():
            out.hashes[f"{base}:by_{dim}:sessions"][value] += 1
            out.hashes[f"{base}:by_{dim}:conversions"][value] += int(s.converted)
        month = f"{prefix}:month:{day(first.ms)[:7]}"
        out.hashes[f"{month}:sessions"][day(first.ms)[8:]] += 1
        out.hashes[f"{month}:conversions"][day(first.ms)[8:]] += int(s.converted)
        views = [e for e in s.events if e.event_type == "screen_view"]
        if views and views[-1].screen:
            out.zsets[f"{base}:top:exit_screens"][views[-1].screen] += 1
        for a, b in itertools.pairwise(views):
            if a.screen and b.screen and a.screen != b.screen:
                out.zsets[f"{base}:transitions"][f"{a.screen}|{b.screen}"] += 1
        for screen in {e.screen for e in views if e.screen}:
            out.hashes[f"{base}:screen:sessions"][screen] += 1
            out.hashes[f"{base}:screen:conversions"][screen] += int(s.converted)
        clicks = {f"{e.screen or 'unknown'}|{e.element}" for e in s.events
                  if e.event_type == "click" and e.element}  # fmt: skip
        for button in clicks:
            out.hashes[f"{base}:button:sessions"][button] += 1
            out.hashes[f"{base}:button:conversions"][button] += int(s.converted)
        starts = {e.form for e in s.events if e.event_type == "form_start" and e.form}
        submits = {e.form for e in s.events if e.event_type == "form_submit" and e.form}
        for form in starts:
            out.hashes[f"{base}:form:started"][form] += 1
            out.hashes[f"{base}:form:submitted"][form] += int(form in submits)
        for i, e in enumerate(s.events):
            if (
                e.event_type == "form_start"
                and e.form
                and not any(
                    later.event_type == "form_submit" and later.form == e.form
                    for later in s.events[i + 1 :]
                )
            ):
                out.zsets[f"{base}:top:abandoned_forms"][e.form] += 1
        for target, times in _clicks_by_target(s.events).items():
            if _bursts(times):
                out.zsets[f"{base}:top:rage_clicks"][target] += _bursts(times)
        for name, (steps, window) in FUNNELS.items():
            for step in range(1, funnel_reached(steps, window, s.events) + 1):
                out.hashes[f"{base}:funnel:{name}"][f"step_{step}"] += 1
    return out


def _clicks_by_target(events: list[E]) -> dict[str, list[int]]:
    targets: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if e.event_type == "click" and e.element:
            targets[f"{e.screen or 'unknown'}|{e.element}"].append(e.ms)
    return targets


def _bursts(times: list[int]) -> int:
    """Bursts of more than 3 clicks within 1 second, each click in at most one burst."""
    bursts = 0
    i = 0
    while i < len(times):
        j = i
        while j + 1 < len(times) and times[j + 1] - times[i] <= 1000:
            j += 1
        if j - i + 1 > 3:
            bursts += 1
            i = j + 1
        else:
            i += 1
    return bursts


def session_segment(session: Session, segment_of: dict[str, str]) -> str:
    """The customer's segment, or ``unknown`` for an anonymous session or unknown customer."""
    if session.identity.startswith("device:"):
        return "unknown"
    return segment_of.get(session.identity, "unknown")


def session_slice(session: Session, segment_of: dict[str, str]) -> tuple[str, int, str, str, str]:
    """(month, day of month, OS, app version, segment) of a session: its first event's, by UTC."""
    first = session.events[0]
    start = day(first.ms)
    return (start[:7], int(start[8:]), first.os or "unknown", first.app_version or "unknown",
            session_segment(session, segment_of))  # fmt: skip


Slice = tuple[str, str, str, int, str, str, str]


def element_conversion(
    session_list: list[Session], segment_of: dict[str, str]
) -> dict[Slice, tuple[int, int]]:
    """(kind, target, month, day of month, OS, app version, segment) → (sessions, conversions).

    Screens: sessions viewing the screen, and of those the converted ones. Buttons
    (``screen|element`` of a click): sessions clicking it, and of those the converted ones.
    Forms: sessions starting the form, and of those the ones also submitting it.
    """
    counts: dict[Slice, list[int]] = defaultdict(lambda: [0, 0])
    for s in session_list:
        where = session_slice(s, segment_of)
        reached: dict[tuple[str, str], bool] = {}
        for e in s.events:
            if e.event_type == "screen_view" and e.screen:
                reached[("screen", e.screen)] = s.converted
            elif e.event_type == "click" and e.element:
                reached[("button", f"{e.screen or 'unknown'}|{e.element}")] = s.converted
            elif e.event_type == "form_start" and e.form:
                reached[("form", e.form)] = any(
                    x.event_type == "form_submit" and x.form == e.form for x in s.events
                )
        for (kind, target), success in reached.items():
            figure = counts[(kind, target, *where)]
            figure[0] += 1
            figure[1] += int(success)
    return {key: (n, c) for key, (n, c) in counts.items()}


def funnel_dropoff(
    session_list: list[Session],
    segment_of: dict[str, str],
    funnels: dict[str, tuple[list[str], int]],
) -> dict[tuple[str, int, str, int, str, str, str], tuple[int, int | None]]:
    """(funnel, step, month, day of month, OS, app version, segment) → (sessions reaching steps
    1..step, of those the ones not reaching the next step; None at the last step)."""
    reached_counts: Counter[tuple[str, int, str, int, str, str, str]] = Counter()
    stopped: Counter[tuple[str, int, str, int, str, str, str]] = Counter()
    for s in session_list:
        where = session_slice(s, segment_of)
        for name, (steps, window) in funnels.items():
            reached = funnel_reached(steps, window, s.events)
            for step in range(1, reached + 1):
                reached_counts[(name, step, *where)] += 1
            if reached:
                stopped[(name, reached, *where)] += 1
    return {
        key: (n, stopped[key] if key[1] < len(funnels[key[0]][0]) else None)
        for key, n in reached_counts.items()
    }
