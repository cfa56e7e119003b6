"""The archive on the real Trino over the real S3 server: the tables and the reports give the
figures the definitions give, computed independently from the input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from flows.trino_sql import connect, run
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import JsonLinesWriter
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.job import run_job
from tests.support.journey_reference import day, figures
from tests.support.reference import expected_from, parse_time


def test_reports_on_trino_match_the_definitions(services: Services, tmp_path: Path) -> None:
    settings = services.settings
    config = SimulationConfig(
        customers=400, rate=4.0, duration_s=3 * 3600, seed=99,
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

    # Every app event maps through the sessions table to its final session, as defined.
    cursor = connect(settings).cursor()
    cursor.execute(
        f"SELECT session_id, event_id FROM {settings.trino_catalog}.{schema}.event_sessions"
    )
    mapped: dict[str, set[str]] = {}
    for session_id, event_id in cursor.fetchall():
        mapped.setdefault(session_id, set()).add(event_id)
    assert mapped == {s.sid: {e.event_id for e in s.events} for s in reference.session_list}

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
