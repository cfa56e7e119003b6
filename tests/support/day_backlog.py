"""A bank's day of traffic (24 hours, daily curve) on a 4-partition topic, and the checks that a
run over it is exact: its Redis figures, its sessions and its events table equal the reference."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sources.simulator import SimulatedMessage, SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.exact import (
    assert_journeys_exact,
    assert_minute_series_complete,
    assert_sessions_exact,
)
from tests.support.journey_reference import Figures, figures
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import Expected, expected_from

PARTITIONS = 4
START = datetime(2026, 2, 3, tzinfo=UTC)
DAY = SimulationConfig(
    customers=2000, rate=1.2, duration_s=86_400, seed=1212, daily_curve=True, start=START,
    duplicate_rate=0.02, malformed_rate=0.01, late_rate=0.01, late_max_s=100,
)  # fmt: skip
HOUR_MS = 3_600_000


@functools.cache
def day_messages() -> list[SimulatedMessage]:
    return list(generate(DAY))


def partition_of(message: SimulatedMessage) -> int:
    """By key, as Kafka's producers place them; a duplicate goes to the next partition, so that
    its two copies are read at different positions of different partitions."""
    home = zlib.crc32(message.key or b"") % PARTITIONS
    return (home + 1) % PARTITIONS if message.kind == "duplicate" else home


def produce(settings: Settings, messages: Iterable[SimulatedMessage]) -> None:
    with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message, partition_of(message))


def event_ms(message: SimulatedMessage) -> int | None:
    try:
        stamp = json.loads(message.value)["event_time"]
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except (ValueError, KeyError, TypeError):
        return None


def expected_day(prefix: str) -> tuple[Expected, Figures]:
    expected = expected_from([m.value for m in day_messages()])
    return expected, figures(expected.valid_unique, _segments(), prefix)


@functools.cache
def _segments() -> dict[str, str]:
    from sources.simulator import customers

    return {c.customer_id: c.segment for c in customers(DAY)}


def assert_exact(services: Services, settings: Settings, what: str) -> dict[str, Any]:
    """The run's figures, sessions and archive equal the reference; returns its Redis dump."""
    prefix = settings.redis_prefix
    expected, journeys = expected_day(prefix)
    dump = redis_dump(services.redis, prefix)
    pipeline = dump[f"{prefix}:pipeline"]
    assert int(pipeline["late"]) == 0, (what, pipeline)
    assert "late_for_sessions" not in pipeline, (what, pipeline)
    assert int(pipeline["valid"]) == len(expected.valid_unique), (what, pipeline)
    assert int(pipeline["duplicates"]) == expected.duplicates, (what, pipeline)
    assert_journeys_exact(dump, journeys, prefix)
    assert_minute_series_complete(dump, prefix)
    assert_sessions_exact(archive_rows(services.s3, settings, "sessions"), journeys)
    events = archive_rows(services.s3, settings)
    assert sorted(r["event_id"] for r in events) == sorted(expected.valid_unique), what
    return dump
