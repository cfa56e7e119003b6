"""Twenty kill -9 at seeded random points of a busy morning read as a backlog, offers on: every
figure, session and offer comes out as the definitions say, no offer twice on the topic, every
decision once in the offers table. Nightly (``make nightly``): it runs for minutes."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from flows.runner import prepare_topics
from sources.customer_sample import sample_rows
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import (
    assert_journeys_exact,
    assert_minute_series_complete,
    assert_sessions_exact,
)
from tests.support.job import run_job, start_job, with_offers
from tests.support.journey_reference import figures
from tests.support.offers_reference import expected_offers
from tests.support.readback import archive_rows, redis_dump, topic_values
from tests.support.reference import expected_from
from tests.support.shipped_campaigns import SPECS

KILLS = 20
SEED = 20_261_207
"""Change it to replay another run; a failure names the kill points it used."""


@pytest.mark.nightly
def test_twenty_kills_at_random_points_lose_nothing_and_double_nothing(
    services: Services, tmp_path: Path
) -> None:
    # A busy morning has anonymous runs that reach their login more than the default 15
    # minutes later; the definitions stitch them whatever the wait, so the job is given the
    # allowance this traffic needs (with the default, 4 events come late for sessions, with or
    # without kills: a setting, not a crash, see CLICKSTREAM_STITCH_ALLOWANCE_S).
    settings = with_offers(
        services.settings,
        tmp_path / "campaigns",
        kafka_batch_size=500,
        offers_holdout_share=0.05,
        stitch_allowance_s=7200,
    )
    prepare_topics(settings, "kafka")
    config = SimulationConfig(
        customers=3000, rate=40.0, duration_s=3 * 3600, seed=515, duplicate_rate=0.01,
        malformed_rate=0.002, start=datetime(2026, 1, 15, 7, 0, tzinfo=UTC),
    )  # fmt: skip
    segment_of = load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, config)
    customers = {row["customer_id"]: row for row in sample_rows(config)}
    messages = list(generate(config))
    with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)

    rng = random.Random(SEED)
    recovery, log = tmp_path / "recovery", tmp_path / "job.log"
    points = [round(rng.uniform(2.0, 9.0), 2) for _ in range(KILLS)]
    for after_s in points:
        job = start_job(settings, "kafka", recovery, log)
        time.sleep(after_s)
        job.send_signal(signal.SIGKILL)
        job.wait(30)
    run_job(settings, "kafka", recovery, timeout=900)
    where = f"kills after {points} s (seed {SEED})"

    events = expected_from([m.value for m in messages]).valid_unique
    expected = expected_offers(
        list(events.values()), customers, SPECS, holdout_share=0.05, global_daily_cap=3,
        timezone="Europe/Warsaw",
    )  # fmt: skip
    offers = [msgspec.json.decode(v) for v in topic_values(settings, settings.offers_topic)]
    twice = [i for i, n in Counter(o["offer_id"] for o in offers).items() if n > 1]
    assert not twice, (len(twice), where)
    assert {o["offer_id"] for o in offers} == set(expected.sent), where

    decisions = {
        msgspec.json.decode(v)["decision_id"]
        for v in topic_values(settings, settings.offer_decisions_topic)
    }
    rows = archive_rows(services.s3, settings, "offers")
    assert Counter(r["decision_id"] for r in rows).most_common(1)[0][1] == 1, where
    assert {r["decision_id"] for r in rows} == decisions, where

    reference = figures(events, segment_of, settings.redis_prefix)
    dump = redis_dump(services.redis, settings.redis_prefix)
    pipeline = dump[f"{settings.redis_prefix}:pipeline"]
    assert int(pipeline["valid"]) == len(events), where
    assert "late_for_sessions" not in pipeline and pipeline["late"] == "0", (pipeline, where)
    assert_sessions_exact(archive_rows(services.s3, settings, "sessions"), reference)
    # Three hours of input with a 2.6-hour series delay: only the first minutes are closed.
    assert_journeys_exact(dump, reference, settings.redis_prefix)
    assert_minute_series_complete(dump, settings.redis_prefix)
