"""The job rescaled over one recovery store, as ops do it with the chart: one process, stopped
(SIGTERM, as Kubernetes stops a pod) and restarted as a cluster of two, stopped again and
finished as one. Over one day's backlog with offers on, every figure, session, event row,
offer and decision must be what the independent computation says, which is what one
uninterrupted run gives (tests/integration/test_backlog.py, test_offers.py): no offer twice,
no decision twice.
"""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from flows.runner import prepare_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact_day import assert_day_with_offers_exact
from tests.support.job import accepted, run_job, start_cluster, wait_for, with_offers


def _stop(processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """SIGTERM every process; each must save its last epoch and exit 0."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    try:
        for index, process in enumerate(processes):
            text = (logs / f"process-{index}.log").read_text
            assert process.wait(120) == 0, text()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def _past(services: Services, settings: Settings, count: int) -> bool:
    return accepted(services.redis, settings) > count


def test_one_process_then_two_then_one_over_one_store_equals_one_run(
    services: Services, tmp_path: Path
) -> None:
    config = SimulationConfig(
        customers=1500, rate=1.0, duration_s=86_400, seed=4242, daily_curve=True,
        start=datetime(2026, 3, 10, tzinfo=UTC), duplicate_rate=0.01, malformed_rate=0.005,
    )  # fmt: skip
    settings = with_offers(
        services.settings,
        tmp_path / "campaigns",
        health_port=0,
        offers_holdout_share=0.05,
        kafka_batch_size=200,
    )
    prepare_topics(settings, "kafka")
    segment_of = load_simulated_customers(services.redis, settings.redis_prefix, tmp_path, config)
    messages = list(generate(config))
    with KafkaWriter(settings.kafka_config(), settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)
    recovery = tmp_path / "recovery"

    # Small polls, so that each stage stops part-way through the day.
    for processes in (1, 2):
        logs = tmp_path / f"{processes}-processes"
        before = accepted(services.redis, settings)
        started = start_cluster(settings, "kafka", recovery, logs, processes)
        try:
            wait_for(
                partial(_past, services, settings, before + 20_000),
                240,
                f"{processes} process(es) to make progress",
            )
        finally:
            _stop(started, logs)
        assert accepted(services.redis, settings) < len(messages) * 0.9
    run_job(settings, "kafka", recovery, timeout=600)

    assert_day_with_offers_exact(services, settings, messages, config, segment_of)
