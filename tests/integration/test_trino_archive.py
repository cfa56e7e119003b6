"""The archive on the real Trino over the real S3 server: the tables and the reports give the
figures the definitions give, computed independently from the input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from flows.trino_sql import DayRange, connect, run, statements
from sources.simulator import DEFAULT_START, SimulationConfig, generate
from sources.simulator_output import JsonLinesWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.identity_reference import ingest_identities
from tests.support.job import ROOT, run_job, settings_env
from tests.support.journey_reference import (
    FUNNELS,
    Figures,
    day,
    element_conversion,
    figures,
    funnel_dropoff,
)
from tests.support.reference import Expected, expected_from, parse_time


@dataclass(frozen=True)
class ArchiveOnTrino:
    """A simulated input run through the job, its archive as Trino tables, and the reference."""

    settings: Settings
    schema: str
    expected: Expected
    reference: Figures
    segment_of: dict[str, str]


def archive_on_trino(
    services: Services, tmp_path: Path, settings: Settings, start: datetime = DEFAULT_START
) -> ArchiveOnTrino:
    """Run the job over three hours of simulated traffic; make its archive Trino tables."""
    config = SimulationConfig(
        customers=400, rate=4.0, duration_s=3 * 3600, seed=99, start=start,
        duplicate_rate=0.02, malformed_rate=0.01, late_rate=0.01, late_max_s=60,
    )  # fmt: skip
    segment_of = load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, config)
    messages = list(generate(config))
    path = tmp_path / "day.jsonl.gz"
    with JsonLinesWriter(path) as writer:
        for message in messages:
            writer.write(message)
    run_job(settings, f"file:{path}", tmp_path / "recovery")

    schema = f"it_{services.run_id}"
    run(settings, "ddl", schema)
    run(settings, "sync", schema)
    expected = expected_from([m.value for m in messages])
    reference = figures(expected.valid_unique, segment_of, settings.redis_prefix)
    return ArchiveOnTrino(settings, schema, expected, reference, segment_of)


def test_reports_on_trino_match_the_definitions(services: Services, tmp_path: Path) -> None:
    archive = archive_on_trino(services, tmp_path, services.settings)
    settings, schema, expected = archive.settings, archive.schema, archive.expected
    reference, segment_of = archive.reference, archive.segment_of

    # Every app event maps through the sessions table to its final session, as defined.
    cursor = connect(settings).cursor()
    cursor.execute(
        f"SELECT session_id, event_id FROM {settings.trino_catalog}.{schema}.event_sessions"
    )
    pairs = cursor.fetchall()
    # Each app event in exactly one session, and the grouping is the definitions'.
    assert len({event_id for _, event_id in pairs}) == len(pairs)
    mapped: dict[str, set[str]] = {}
    for session_id, event_id in pairs:
        mapped.setdefault(session_id, set()).add(event_id)
    assert mapped == {s.sid: {e.event_id for e in s.events} for s in reference.session_list}

    # Every event's identity as known when the job processed it: a file is read in order, so an
    # anonymous event has the customer of its device's latest login read before it (the input
    # has no login read after a younger event of its device, where the batch would decide).
    cursor.execute(f"SELECT event_id, identity FROM {settings.trino_catalog}.{schema}.events")
    archived = dict(cursor.fetchall())
    identities = ingest_identities(expected.valid_unique)
    assert all(i.read_before == i.every_login for i in identities.values())
    assert archived == {event_id: i.every_login for event_id, i in identities.items()}
    no_customer = {e for e, event in expected.valid_unique.items() if not event.get("customer_id")}
    logged_in_before = {e for e in no_customer if not archived[e].startswith("device:")}
    assert len(logged_in_before) > 1000 and len(no_customer - logged_in_before) > 1000

    _, rows = run(settings, "reports/events_by_type", schema)
    by_type: Counter[tuple[str, str]] = Counter()
    for event in expected.valid_unique.values():
        moment = parse_time(event["event_time"])
        assert moment is not None
        by_type[(day(int(moment.timestamp() * 1000)), event["event_type"])] += 1
    assert {(dt, t): n for dt, t, n in rows} == dict(by_type)

    _, rows = run(settings, "reports/exit_screens", schema)
    exits: Counter[tuple[str | None, str | None, str]] = Counter()
    for session in reference.session_list:
        views = [e for e in session.events if e.event_type == "screen_view" and e.screen]
        if views:
            first = session.events[0]
            exits[(first.app, first.app_version, views[-1].screen or "")] += 1
    assert {(app, version, screen): n for app, version, screen, n in rows} == dict(exits)

    _, rows = run(settings, "reports/conversion_by_segment", schema)
    conversion_rows = rows
    sessions: Counter[tuple[str, int]] = Counter()
    converted: Counter[tuple[str, int]] = Counter()
    for session in reference.session_list:
        segment = (
            "unknown"
            if session.identity.startswith("device:")
            else segment_of.get(session.identity, "unknown")
        )
        start_day = int(day(session.events[0].ms)[-2:])
        sessions[(segment, start_day)] += 1
        converted[(segment, start_day)] += int(session.converted)
    assert {(seg, dom): (n, c) for seg, dom, n, c, _ in rows} == {
        key: (n, converted[key]) for key, n in sessions.items()
    }
    _, rows = run(settings, "reports/transitions", schema)
    transitions: Counter[str] = Counter()
    for key, members in reference.zsets.items():
        if key.endswith(":transitions"):
            transitions.update(members)
    assert {f"{a}|{b}": n for a, b, n in rows} == dict(transitions)

    _, rows = run(settings, "reports/sessions_by_segment", schema)
    per_segment: Counter[str] = Counter()
    customers_of: dict[str, set[str]] = {}
    for session in reference.session_list:
        anonymous = session.identity.startswith("device:")
        segment = "unknown" if anonymous else segment_of.get(session.identity, "unknown")
        per_segment[segment] += 1
        if not anonymous:
            customers_of.setdefault(segment, set()).add(session.identity)
    assert {seg: (n, c) for seg, n, c, _ in rows} == {
        seg: (n, len(customers_of.get(seg, set()))) for seg, n in per_segment.items()
    }

    # The same figures the live Redis aggregates hold for the (closed) day.
    dates = {day(s.events[0].ms) for s in reference.session_list}
    assert len(dates) == 1
    base = f"{settings.redis_prefix}:day:{dates.pop()}:by_segment"
    live_sessions = services.redis.hgetall(f"{base}:sessions")
    live_conversions = services.redis.hgetall(f"{base}:conversions")
    live_rate = services.redis.hgetall(f"{base}:conversion_rate")
    for segment, _, n, c, rate in conversion_rows:
        key = segment.encode()
        assert (int(live_sessions[key]), int(live_conversions[key])) == (n, c), segment
        assert abs(rate - c / n) < 1e-6
        assert abs(float(live_rate.get(key, b"0")) - rate) < 1e-6


def test_conversion_and_funnel_reports_match_the_definitions_and_redis(
    services: Services, tmp_path: Path
) -> None:
    # A funnel added by configuration (the report's SQL is generated from the same settings),
    # with a window short enough to matter and a first step that recurs within sessions.
    steps = ["screen:dashboard", "screen:transfer", "screen:transfer_confirm"]
    extra_funnels = {"quick_transfer": (steps, 60_000)}
    settings = services.settings.model_copy(
        update={"funnels": f"quick_transfer={','.join(steps)}@60"}
    )
    archive = archive_on_trino(services, tmp_path, settings)
    schema, segment_of = archive.schema, archive.segment_of
    sessions = archive.reference.session_list
    (date,) = {day(s.events[0].ms) for s in sessions}
    base = f"{settings.redis_prefix}:day:{date}"

    def live(key: str) -> dict[str, int]:
        fields = services.redis.hgetall(f"{base}:{key}").items()
        return {(f.decode() if isinstance(f, bytes) else f): int(v) for f, v in fields}

    # Conversion of screens, buttons and forms by OS, app version, segment and day of month.
    _, rows = run(settings, "reports/element_conversion", schema)
    assert {tuple(row[:7]): (row[7], row[8]) for row in rows} == element_conversion(
        sessions, segment_of
    )
    assert {row[0] for row in rows} == {"screen", "button", "form"}
    for *_, n, c, rate in rows:
        assert rate == round(c / n, 6)
    # For the closed day, summed over OS, app version and segment: the live Redis figures.
    families = {
        "screen": ("screen:sessions", "screen:conversions"),
        "button": ("button:sessions", "button:conversions"),
        "form": ("form:started", "form:submitted"),
    }
    for kind, (reached_key, converted_key) in families.items():
        reached: Counter[str] = Counter()
        converted: Counter[str] = Counter()
        for _, target, month, day_of_month, _, _, _, n, c, _ in (r for r in rows if r[0] == kind):
            assert f"{month}-{day_of_month:02d}" == date
            reached[target] += n
            converted[target] += c
        assert live(reached_key) == dict(reached), kind
        assert live(converted_key) == dict(converted), kind

    # Funnel drop-off for the shipped funnels and the configured one.
    _, rows = run(settings, "reports/funnel_dropoff", schema)
    funnels = {**FUNNELS, **extra_funnels}
    assert {(row[0], row[1], *row[3:8]): (row[8], row[9]) for row in rows} == funnel_dropoff(
        sessions, segment_of, funnels
    )
    first_step = {(row[0], *row[3:8]): row[8] for row in rows if row[1] == 1}
    for row in rows:
        assert row[10] == round(row[8] / first_step[(row[0], *row[3:8])], 6)
    # Every funnel is exercised past its first step, and steps are named as configured.
    assert {row[0] for row in rows if row[1] == 2} == set(funnels)
    assert {(row[0], row[1]): row[2] for row in rows}[("quick_transfer", 3)] == (
        "screen:transfer_confirm"
    )
    for name in funnels:
        per_step: Counter[str] = Counter()
        for row in rows:
            if row[0] == name:
                per_step[f"step_{row[1]}"] += row[8]
        assert live(f"funnel:{name}") == dict(per_step), name

    # The command an analyst runs prints the same funnels.
    environment = settings_env(settings) | {"CLICKSTREAM_TRINO_SCHEMA": schema, "COLUMNS": "250"}
    printed = subprocess.run(
        [sys.executable, "-m", "flows", "trino", "report", "funnel_dropoff"],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert all(name in printed for name in funnels)


def test_a_range_of_days_reads_only_its_partitions_and_keeps_sessions_whole(
    services: Services, tmp_path: Path
) -> None:
    # Three hours across midnight: sessions start on one day and end on the next.
    start = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
    archive = archive_on_trino(services, tmp_path, services.settings, start)
    settings, schema, segment_of = archive.settings, archive.schema, archive.segment_of
    sessions = archive.reference.session_list
    first, second = date(2026, 1, 15), date(2026, 1, 16)
    started_first = [s for s in sessions if day(s.events[0].ms) == first.isoformat()]
    assert any(day(s.events[-1].ms) == second.isoformat() for s in started_first)

    # The sessions that started on the first day, with their events after midnight.
    _, rows = run(settings, "reports/element_conversion", schema, DayRange(first, first))
    assert {tuple(row[:7]): (row[7], row[8]) for row in rows} == element_conversion(
        started_first, segment_of
    )
    _, rows = run(settings, "reports/exit_screens", schema, DayRange(second, None))
    started_second = [s for s in sessions if day(s.events[0].ms) == second.isoformat()]
    assert sum(n for *_, n in rows) == sum(
        any(e.event_type == "screen_view" and e.screen for e in s.events) for s in started_second
    )

    # Only the day's partitions are read: Trino processes that day's events and no others.
    events_of_second = [
        e for e in archive.expected.valid_unique.values() if e["event_time"] >= "2026-01-16"
    ]
    cursor = connect(settings).cursor()
    (statement,) = statements("reports/events_by_type", settings, schema, DayRange(second, second))
    cursor.execute(statement)
    rows = cursor.fetchall()
    assert {dt for dt, _, _ in rows} == {second.isoformat()}
    assert sum(n for *_, n in rows) == len(events_of_second)
    assert cursor.stats["processedRows"] == len(events_of_second)

    # The command an analyst runs: --from/--to over both days is the whole archive.
    environment = settings_env(settings) | {"CLICKSTREAM_TRINO_SCHEMA": schema}
    printed = subprocess.run(
        [sys.executable, "-m", "flows", "trino", "report", "events_by_type", "--format", "json",
         "--from", first.isoformat(), "--to", second.isoformat()],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    _, everything = run(settings, "reports/events_by_type", schema)
    assert [tuple(r.values()) for r in json.loads(printed)] == [tuple(r) for r in everything]
    refused = subprocess.run(
        [sys.executable, "-m", "flows", "trino", "report", "events_by_type",
         "--day", first.isoformat(), "--to", second.isoformat()],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "not both" in refused.stderr
