"""Run the real job as a separate process, the way operations would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


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
    settings: Settings, source: str, recovery_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Start a tailing job in the background (to be killed by a recovery test)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            job_command(source, recovery_dir, tail=True),
            env=settings_env(settings),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
