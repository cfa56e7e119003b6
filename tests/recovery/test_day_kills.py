"""Kill -9 at several points of a day read as a Kafka backlog, the last one right after an hour's
object of the sessions table was written and before its epoch was committed, then a resume: every
table of the archive holds every row once, none missing, and every figure is exact.

The day spans 24 hours of event time, so hours of sessions and offers leave the job's state
between a snapshot and the replay that follows a kill."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec

from sources.kafka import ensure_topics
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.day_backlog import DAY, PARTITIONS, assert_exact, day_messages, produce
from tests.support.job import accepted, run_job, start_job, wait_for, with_offers
from tests.support.readback import archive_rows, topic_values


def _session_objects(services: Services, settings: Settings) -> set[tuple[str, str]]:
    """Every object of the sessions table, with when it was last written."""
    root = f"{settings.s3_bucket}/{settings.s3_prefix}/sessions"
    services.s3.invalidate_cache()
    try:
        found = services.s3.find(root, detail=True)
    except FileNotFoundError:
        return set()
    return {(path, str(info.get("LastModified"))) for path, info in found.items()}


def test_kills_across_a_day_backlog_leave_every_table_whole(
    services: Services, tmp_path: Path
) -> None:
    # Objects are rewritten every 2 s, so a kill lands between a write and its epoch's end.
    settings = with_offers(services.settings, tmp_path / "campaigns")
    topic = settings.events_topics[0]
    topics = [topic, settings.dlq_topic_for(topic), settings.offers_topic]
    ensure_topics(settings.kafka_config(), [*topics, settings.offer_decisions_topic], PARTITIONS)
    load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, DAY)
    messages = day_messages()
    total = DAY.event_count
    recovery, log = tmp_path / "recovery", tmp_path / "job.log"

    def kill_when(condition: Callable[[], bool], what: str) -> None:
        job = start_job(settings, "kafka", recovery, log)
        try:
            wait_for(condition, 300, what)
        finally:
            job.send_signal(signal.SIGKILL)
            job.wait(30)

    def past(share: float) -> Callable[[], bool]:
        return lambda: accepted(services.redis, settings) >= int(total * share)

    # The topic fills as the day goes (the job cannot run ahead of it): a kill after 30% of the
    # day's events, one after 60% once sessions are archived, one right after a sessions object
    # was (re)written, before its epoch could be committed.
    cuts = [int(len(messages) * share) for share in (0.35, 0.7)]
    produce(settings, messages[: cuts[0]])
    kill_when(past(0.3), "30% of the day")
    produce(settings, messages[cuts[0] : cuts[1]])
    kill_when(
        lambda: past(0.6)() and bool(_session_objects(services, settings)),
        "60% of the day and sessions archived",
    )
    written = _session_objects(services, settings)
    kill_when(lambda: bool(_session_objects(services, settings) - written), "a sessions write")
    assert accepted(services.redis, settings) < total
    produce(settings, messages[cuts[1] :])

    run_job(settings, "kafka", recovery, timeout=600)
    # Figures, the sessions table and the events table: every row once, as the reference.
    assert_exact(services, settings, "killed three times and resumed")
    sessions = archive_rows(services.s3, settings, "sessions")
    assert len({(r["_dt"], r["_hour"]) for r in sessions}) == len({r["_object"] for r in sessions})

    # The offers table: each decision once, each one also on the decisions topic, and every
    # offer matched as pending has its one release (held over the night's quiet hours or not).
    rows = archive_rows(services.s3, settings, "offers")
    repeated = [i for i, n in Counter(r["decision_id"] for r in rows).items() if n > 1]
    assert not repeated, repeated[:5]
    on_topic = {
        msgspec.json.decode(value)["decision_id"]
        for value in topic_values(settings, settings.offer_decisions_topic)
    }
    assert {r["decision_id"] for r in rows} <= on_topic
    pending = {r["offer_id"] for r in rows if (r["stage"], r["outcome"]) == ("match", "pending")}
    released = {r["offer_id"] for r in rows if r["stage"] == "release"}
    assert pending == released
    assert len(pending) > 50
    assert any(r["reason"] == "quiet_hours" for r in rows)
