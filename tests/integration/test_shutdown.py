"""A clean stop: SIGTERM, SIGINT or SIGHUP save the last epoch and exit 0, without a panic, and a
restart from the recovery store carries on as if the job had never stopped."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sources.kafka import ensure_topics
from sources.simulator import SimulatedMessage, SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import (
    assert_journeys_exact,
    assert_minute_series_complete,
    assert_sessions_exact,
)
from tests.support.job import accepted, run_job, start_job, wait_for
from tests.support.journey_reference import figures
from tests.support.proxy import TcpProxy
from tests.support.readback import archive_rows, redis_dump
from tests.support.reference import expected_from


def _day(rate: float) -> SimulationConfig:
    return SimulationConfig(
        customers=1500, rate=rate, duration_s=86_400, seed=77, daily_curve=True,
        start=datetime(2026, 2, 9, tzinfo=UTC),
        duplicate_rate=0.01, malformed_rate=0.005, late_rate=0.01, late_max_s=60,
    )  # fmt: skip


def _produce(settings: Settings, messages: list[SimulatedMessage]) -> None:
    with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)


def _started(
    services: Services, tmp_path: Path, messages: list[SimulatedMessage]
) -> tuple[Settings, subprocess.Popen[bytes], Path]:
    """A tailing job with a recovery store over ``messages``, once it has counted a third."""
    settings = services.settings.model_copy(update={"epoch_interval_s": 1.0, "stop_grace_s": 60})
    topic = settings.events_topics[0]
    ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
    _produce(settings, messages)
    log = tmp_path / "job.log"
    job = start_job(settings, "kafka", tmp_path / "recovery", log)
    wait_for(lambda: accepted(services.redis, settings) > len(messages) // 3, 120, "progress")
    return settings, job, log


def _stop(job: subprocess.Popen[bytes], number: signal.Signals, log: Path) -> str:
    """Send one signal; the job must exit 0 on its own, saying why, without a panic."""
    job.send_signal(number)
    try:
        code = job.wait(90)
    except subprocess.TimeoutExpired:
        job.kill()
        raise
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert f"{number.name} received" in text, text[-3000:]
    assert "stopped: the last epoch is saved" in text, text[-3000:]
    assert "panic" not in text.lower(), text[-3000:]
    return text


def test_a_day_stopped_with_sigterm_and_restarted_gives_exact_figures(
    services: Services, tmp_path: Path
) -> None:
    config = _day(rate=1.0)
    segment_of = load_simulated_customers(
        services.redis, services.settings.redis_prefix, tmp_path, config
    )
    messages = list(generate(config))
    cut = int(len(messages) * 0.4)
    settings, job, log = _started(services, tmp_path, messages[:cut])
    time.sleep(1.5)
    _stop(job, signal.SIGTERM, log)
    stopped_at = accepted(services.redis, settings)
    assert 0 < stopped_at < len(messages)

    _produce(settings, messages[cut:])
    run_job(settings, "kafka", tmp_path / "recovery")

    expected = figures(
        expected_from([m.value for m in messages]).valid_unique, segment_of, settings.redis_prefix
    )
    dump = redis_dump(services.redis, settings.redis_prefix)
    pipeline = dump[f"{settings.redis_prefix}:pipeline"]
    assert int(pipeline["valid"]) == 86_400, pipeline
    assert "late_for_sessions" not in pipeline, pipeline
    assert len(expected.session_list) > 1000
    # Had the stop closed the open sessions as at the end of a back-fill, the sessions across it
    # would be split in two and these would differ.
    assert_journeys_exact(dump, expected, settings.redis_prefix)
    assert_minute_series_complete(dump, settings.redis_prefix)
    assert_sessions_exact(archive_rows(services.s3, settings, "sessions"), expected)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGHUP])
def test_ctrl_c_or_a_closed_terminal_stops_cleanly(
    services: Services, tmp_path: Path, number: signal.Signals
) -> None:
    messages = list(generate(_day(rate=0.3)))
    _settings, job, log = _started(services, tmp_path, messages)
    _stop(job, number, log)


def test_a_second_signal_stops_at_once(services: Services, tmp_path: Path) -> None:
    """A job that cannot finish its stop (Redis is cut off, its writes wait) stops at once on a
    second signal, with status 1 and saying so."""
    messages = list(generate(_day(rate=0.3)))
    with TcpProxy("127.0.0.1", urlsplit(services.settings.redis_url).port or 6379) as proxy:
        direct = services.settings.model_copy(
            update={"epoch_interval_s": 1.0, "stop_grace_s": 120, "health_port": 0}
        )
        settings = direct.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"})
        topic = settings.events_topics[0]
        ensure_topics(settings.kafka_config(), [topic, settings.dlq_topic_for(topic)], 4)
        _produce(settings, messages)
        log = tmp_path / "job.log"
        job = start_job(settings, "kafka", tmp_path / "recovery", log)
        try:
            wait_for(lambda: accepted(services.redis, direct) > 0, 120, "progress")
            proxy.cut()
            job.send_signal(signal.SIGTERM)
            wait_for(lambda: "SIGTERM received" in log.read_text(), 30, "the first signal")
            assert job.poll() is None, log.read_text()[-3000:]
            job.send_signal(signal.SIGTERM)
            assert job.wait(30) == 1
        finally:
            if job.poll() is None:
                job.kill()
    assert "SIGTERM again: stopping at once" in log.read_text(), log.read_text()[-3000:]
