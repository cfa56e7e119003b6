"""Run the real job as a separate process, the way operations would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from devstack.polling import poll_until
from sources.simulator import SimulatedMessage
from sources.simulator_output import KafkaWriter
from state.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CAMPAIGNS = ("atm_decline_personal_loan.py", "standing_order_overdraft.py",
                     "abandoned_loan_application.py")  # fmt: skip


def with_offers(settings: Settings, folder: Path, **update: Any) -> Settings:
    """``settings`` with offers on: the shipped campaigns copied into ``folder``, the offer topics
    named after the events topic, objects written every 2 s (so that a crash leaves some written
    before it), and no trigger too old (simulated traffic is months behind the wall clock)."""
    folder.mkdir(exist_ok=True)
    for name in SHIPPED_CAMPAIGNS:
        shutil.copy(ROOT / "campaigns" / name, folder / name)
    topic = settings.events_topics[0]
    return settings.model_copy(
        update={
            "epoch_interval_s": 1.0,
            "archive_max_age_s": 2.0,
            "archive_chunk_rows": 5000,
            "campaigns_dir": folder,
            "offers_topic": f"{topic}.offers",
            "offer_decisions_topic": f"{topic}.offer-decisions",
            "offers_max_trigger_age_s": 0,
            **update,
        }
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a job process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSTREAM_")}
    env.update(settings.as_environment())
    return env


def job_command(source: str, recovery_dir: Path | None, *, tail: bool = False) -> list[str]:
    """The ``clickstream run`` command line."""
    command = [sys.executable, "-m", "flows", "run", "--source", source, "--no-api"]
    command.append("--tail" if tail else "--no-tail")
    if recovery_dir is not None:
        command += ["--recovery-dir", str(recovery_dir)]
    return command


def run_job(
    settings: Settings, source: str, recovery_dir: Path | None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the job until its input ends; fail with its output when it does not succeed."""
    result = subprocess.run(
        job_command(source, recovery_dir),
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"job failed:\n{result.stdout}\n{result.stderr}"
    return result


def start_job(
    settings: Settings, source: str, recovery_dir: Path, log: Path, *, tail: bool = True
) -> subprocess.Popen[bytes]:
    """Start a job in the background (tailing unless told otherwise)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            job_command(source, recovery_dir, tail=tail),
            env=settings_env(settings),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_cluster(
    settings: Settings,
    source: str,
    recovery_dir: Path | None,
    logs: Path,
    processes: int,
    *,
    tail: bool = True,
) -> list[subprocess.Popen[bytes]]:
    """Start the job as ``processes`` processes on 127.0.0.1 (``--process-id``,
    ``--addresses``), their output in ``logs/process-<i>.log``."""
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    for index in range(processes):
        command = [*job_command(source, recovery_dir, tail=tail), "--process-id", str(index)]
        command += ["--addresses", addresses]
        with (logs / f"process-{index}.log").open("ab") as out:
            started.append(
                subprocess.Popen(
                    command, env=settings_env(settings), cwd=ROOT, stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
    return started


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every half second; fail naming ``what`` after ``timeout_s``."""
    if not poll_until(condition, timeout_s, 0.5):
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def accepted(client: redis.Redis, settings: Settings) -> int:
    """Valid events the job has counted so far (its pipeline figures in Redis)."""
    return int(client.hget(f"{settings.redis_prefix}:pipeline", "valid") or 0)


def crash_midway(
    client: redis.Redis,
    settings: Settings,
    messages: Sequence[SimulatedMessage],
    recovery_dir: Path,
    log: Path,
) -> None:
    """Write ``messages`` to the events topic, start a tailing job with a recovery store, and
    SIGKILL it once it has accepted a third of them and run a little longer."""
    with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)
    job = start_job(settings, "kafka", recovery_dir, log)
    try:
        wait_for(
            lambda: accepted(client, settings) > len(messages) // 3,
            120,
            "the job to make progress",
        )
        time.sleep(2.5)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(30)
