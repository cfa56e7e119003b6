"""The local stack's process records: a pid file names a running process until it stops, a
stale or reused pid is forgotten, and a stop ends the whole process group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from devstack import procs
from devstack.polling import poll_until

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# A service whose launcher starts the real server as a child (as Kafka's and Trino's scripts do).
_LAUNCHER = [
    sys.executable,
    "-c",
    f"import subprocess, time; subprocess.Popen({_SLEEPER!r}); time.sleep(60)",
]


def test_a_started_service_is_recorded_until_it_is_stopped_with_its_children(
    tmp_path: Path,
) -> None:
    process, _ = procs.spawn(_LAUNCHER, tmp_path / "launcher.log", tmp_path)
    pid_file = tmp_path / "launcher.pid"
    procs.write_pid(pid_file, process.pid)
    launcher = psutil.Process(process.pid)
    try:
        assert poll_until(lambda: bool(launcher.children()), 10.0, 0.05)
        server = launcher.children()[0]
        assert procs.read_pid(pid_file) == process.pid
        procs.terminate(process.pid, timeout=10.0)
        assert not procs.pid_alive(process.pid)
        assert not procs.pid_alive(server.pid)
        assert procs.read_pid(pid_file) is None
        assert not pid_file.exists()
    finally:
        process.kill()
        process.wait()


def test_a_pid_file_older_than_its_process_is_stale(tmp_path: Path) -> None:
    """The pid was reused: the process with it started long after the file was written."""
    pid_file = tmp_path / "reused.pid"
    procs.write_pid(pid_file, os.getpid())
    an_hour_ago = time.time() - 3600
    os.utime(pid_file, (an_hour_ago, an_hour_ago))
    assert procs.read_pid(pid_file) is None
    assert not pid_file.exists()


def test_a_pid_file_naming_no_process_is_removed(tmp_path: Path) -> None:
    process, _ = procs.spawn([sys.executable, "-c", "pass"], tmp_path / "quick.log", tmp_path)
    process.wait()
    pid_file = tmp_path / "quick.pid"
    procs.write_pid(pid_file, process.pid)
    assert procs.read_pid(pid_file) is None
    assert not pid_file.exists()
    (tmp_path / "garbled.pid").write_text("not a pid\n")
    assert procs.read_pid(tmp_path / "garbled.pid") is None
