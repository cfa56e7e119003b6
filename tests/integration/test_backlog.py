"""A bank's day read as a Kafka backlog from 4 partitions gives the same figures as the same day
replayed from a file, on one process or a cluster of two, with the partitions read far apart or
one of them hours behind, and a partition that goes silent in live traffic stops holding the
watermark back only after the idle bound of wall clock."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sources.kafka import ensure_topics
from sources.simulator import SimulatedMessage
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services, fresh_services
from tests.support.customers import load_simulated_customers
from tests.support.day_backlog import (
    DAY,
    HOUR_MS,
    PARTITIONS,
    assert_exact,
    day_messages,
    event_ms,
    expected_day,
    partition_of,
    produce,
)
from tests.support.exact import same_keys
from tests.support.job import (
    accepted,
    run_job,
    start_cluster,
    start_job,
    wait_for,
)


def test_a_day_read_as_a_backlog_by_one_process_or_two_equals_its_file_replay(
    services: Services, tmp_path: Path
) -> None:
    settings = services.settings.model_copy(update={"epoch_interval_s": 2.0})
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], PARTITIONS)
    produce(settings, day_messages())
    load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, DAY)

    # One process, the job's defaults: each poll of a partition spans hours of this day.
    run_job(settings, "kafka", None, timeout=600)
    backlog = assert_exact(services, settings, "backlog")
    expected, _ = expected_day(settings.redis_prefix)
    assert len(expected.valid_unique) == DAY.event_count > 100_000
    assert expected.duplicates > 1000

    # The same topic read by a cluster of two processes, into a prefix of its own.
    with fresh_services() as other:
        cluster = other.settings.model_copy(
            update={"events_topics": settings.events_topics, "epoch_interval_s": 2.0}
        )
        load_simulated_customers(other.redis, cluster.redis_prefix, tmp_path, DAY)
        run_cluster(cluster, tmp_path)
        dump = assert_exact(other, cluster, "cluster")
        assert same_keys(dump, cluster.redis_prefix) == same_keys(backlog, settings.redis_prefix)

    # The same messages replayed from a file.
    path = tmp_path / "day.jsonl"
    path.write_bytes(b"".join(m.value + b"\n" for m in day_messages()))
    with fresh_services() as other:
        replay = other.settings
        load_simulated_customers(other.redis, replay.redis_prefix, tmp_path, DAY)
        run_job(replay, f"file:{path}", None, timeout=600)
        dump = assert_exact(other, replay, "file")
        assert same_keys(dump, replay.redis_prefix) == same_keys(backlog, settings.redis_prefix)


def run_cluster(settings: Settings, tmp_path: Path) -> None:
    """Run the bounded job as two processes on 127.0.0.1; both must end cleanly."""
    processes = start_cluster(settings, "kafka", None, tmp_path / "cluster", 2, tail=False)
    try:
        for index, process in enumerate(processes):
            log = tmp_path / "cluster" / f"process-{index}.log"
            assert process.wait(600) == 0, log.read_text()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def low_watermark(services: Services, settings: Settings) -> int:
    value = services.redis.hget(f"{settings.redis_prefix}:pipeline", "low_watermark_ms")
    return int(value or -1)


def test_a_partition_six_hours_behind_holds_the_watermark_and_loses_nothing_across_a_kill(
    services: Services, tmp_path: Path
) -> None:
    # Partition 3 has only the first 18 hours when the job starts; the rest arrives while it
    # runs (a producer that was down). It must hold the watermark back, not turn late; the
    # others, read up to 2 hours ahead of it, pause until it catches up.
    settings = services.settings.model_copy(
        update={"epoch_interval_s": 1.0, "partition_idle_s": 600.0, "alignment_max_drift_s": 7200}
    )
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], PARTITIONS)
    load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, DAY)
    behind_from = DAY.start_ms + 18 * HOUR_MS
    held_back = [
        m for m in day_messages() if partition_of(m) == 3 and (event_ms(m) or 0) >= behind_from
    ]
    held_ids = {id(m) for m in held_back}
    produce(settings, (m for m in day_messages() if id(m) not in held_ids))
    recovery = tmp_path / "recovery"
    log = tmp_path / "job.log"
    job = start_job(settings, "kafka", recovery, log)
    try:
        wait_for(
            lambda: low_watermark(services, settings) >= behind_from - 2 * HOUR_MS,
            240,
            "partition 3 to be read up to its 18th hour",
        )
        time.sleep(3)
        # The three partitions with the whole day are read, partition 3 is not: the watermark
        # stays with partition 3.
        assert low_watermark(services, settings) < behind_from, log.read_text()[-2000:]
        produce(settings, held_back)
        expected, _ = expected_day(settings.redis_prefix)
        total = len(expected.valid_unique)
        wait_for(lambda: accepted(services.redis, settings) >= total, 240, f"{total} events")
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(30)
    # A bounded run from the recovery store finishes the day: every open session is final.
    run_job(settings, "kafka", recovery, timeout=600)
    assert_exact(services, settings, "partition behind, killed and resumed")


def _event(event_id: str, at_ms: int, customer: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "event_time": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(),
            "event_type": "screen_view",
            "customer_id": customer,
            "device_id": f"d-{customer}",
            "channel": "mobile",
            "app": "bank",
            "app_version": "1.0",
            "os": "ios",
            "os_version": "17",
            "screen": "home",
        }
    ).encode()


def test_a_silent_partition_stops_holding_the_watermark_only_after_the_idle_bound(
    services: Services, tmp_path: Path
) -> None:
    idle_s = 8.0
    settings = services.settings.model_copy(
        update={"epoch_interval_s": 1.0, "partition_idle_s": idle_s, "allowed_lateness_s": 0}
    )
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], PARTITIONS)
    base = int(time.time() * 1000) // 1000 * 1000
    counter = iter(range(1_000_000))

    def send(partitions: Iterable[int], at_ms: int) -> None:
        with KafkaWriter(settings.kafka_bootstrap_servers, topic) as writer:
            for partition in partitions:
                n = next(counter)
                value = _event(f"live-{n}", at_ms, f"C{partition}")
                writer.write(SimulatedMessage(f"C{partition}".encode(), value), partition)

    job = start_job(settings, "kafka", tmp_path / "recovery", tmp_path / "job.log")
    try:
        send(range(4), base)
        send(range(3), base + 60_000)  # partition 3 falls silent at base
        wait_for(lambda: low_watermark(services, settings) == base, 60, "every partition read")
        time.sleep(idle_s / 2)
        # Half the idle bound: partition 3 still holds the watermark back.
        assert low_watermark(services, settings) == base
        wait_for(
            lambda: low_watermark(services, settings) == base + 60_000,
            idle_s * 5,
            "the silent partition to go idle",
        )
        # It delivers again, behind the others: it holds the watermark back again.
        send([3], base + 90_000)
        wait_for(lambda: accepted(services.redis, settings) == 8, 30, "partition 3's event")
        send(range(3), base + 120_000)
        wait_for(
            lambda: low_watermark(services, settings) == base + 90_000,
            30,
            "the partition back",
        )
        time.sleep(idle_s / 2)
        assert low_watermark(services, settings) == base + 90_000
        assert int(services.redis.hget(f"{settings.redis_prefix}:pipeline", "late") or 0) == 0
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(30)
