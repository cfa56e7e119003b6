"""Processes and ports: detached start, pid files, liveness, stop, log tails."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import psutil

from devstack.errors import StackError
from devstack.polling import poll_until

# A pid file is written right after its process starts; a process with that pid that started
# later than this (plus a margin) is a different process that reused the pid.
_PID_REUSE_MARGIN_S = 5.0
# Logs above this size are moved aside to ``<name>.log.1`` when their service starts again.
_LOG_ROTATE_BYTES = 20 * 1024 * 1024


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (where the stack may bind).

    Args:
        host: A host name or IP address.

    Returns:
        True for ``localhost`` and loopback addresses such as ``127.0.0.1`` or ``::1``.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``.

    Args:
        host: The host to connect to.
        port: The TCP port.
        timeout: Seconds to wait for the connection.

    Returns:
        True when a connection could be opened.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _process(pid: int) -> psutil.Process | None:
    """The running process ``pid`` (reaping it first if it is our exited child), else None.

    A zombie counts as gone: it has exited and only waits for its parent to collect it.
    """
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        pass
    return process


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (reaping it if it is our child).

    Args:
        pid: The process id.

    Returns:
        True while the process runs.
    """
    return _process(pid) is not None


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs; stale files are removed.

    Args:
        pid_file: A pid file written by :func:`write_pid`.

    Returns:
        The pid of the running process, or None when there is none.
    """
    try:
        pid = int(pid_file.read_text().strip())
        written = pid_file.stat().st_mtime
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return None
    process = _process(pid)
    if process is None or _started_after(process, written + _PID_REUSE_MARGIN_S):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def _started_after(process: psutil.Process, moment: float) -> bool:
    """Whether ``process`` started after the Unix time ``moment`` (False where it cannot tell)."""
    try:
        return process.create_time() > moment
    except psutil.Error:
        return False


def write_pid(pid_file: Path, pid: int) -> None:
    """Record ``pid`` in ``pid_file``.

    Args:
        pid_file: Where to write.
        pid: The process id.
    """
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def spawn(
    command: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command`` detached from this process, its output appended to ``log_path``.

    The process gets its own session, so it outlives the command line that started it and
    ignores that terminal's Ctrl+C.

    Args:
        command: The program and its arguments.
        log_path: The log file (created, or rotated when large).
        cwd: The working directory.
        env: The environment, or None to inherit this process's.

    Returns:
        The process and the offset in the log where its output starts.

    Raises:
        StackError: When the program cannot be executed.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    if log_path.exists() and log_path.stat().st_size > _LOG_ROTATE_BYTES:
        log_path.replace(log_path.with_name(log_path.name + ".1"))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return _start_logged(command, log_path, f"devstack {stamp}", cwd, env, detach=True)


def run_logged(
    command: list[str], log_path: Path, timeout: float, cwd: Path | None = None
) -> tuple[int, int]:
    """Run a one-off command to completion with its output appended to ``log_path``.

    Args:
        command: The program and its arguments.
        log_path: The log that receives a header line and the output.
        timeout: Seconds before the command counts as failed (exit code -1).
        cwd: The working directory.

    Returns:
        The exit code (-1 on a timeout) and the offset in the log where its output starts,
        for :func:`tail`.

    Raises:
        StackError: When the program cannot be executed.
    """
    process, offset = _start_logged(command, log_path, "devstack", cwd)
    with process:
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return -1, offset
        except BaseException:
            process.kill()
            raise
    return returncode, offset


def _start_logged(
    command: list[str],
    log_path: Path,
    header: str,
    cwd: Path | None,
    env: dict[str, str] | None = None,
    detach: bool = False,
) -> tuple[subprocess.Popen[bytes], int]:
    """Append ``==== <header>: <command>`` to ``log_path``, then start ``command`` writing there.

    Args:
        command: The program and its arguments.
        log_path: The log (its folder is created).
        header: What the header line says before the command.
        cwd: The working directory, or None for this process's.
        env: The environment, or None to inherit this process's.
        detach: Give the process its own session (see :func:`spawn`).

    Returns:
        The process and the offset in the log where its output starts.

    Raises:
        StackError: When the program cannot be executed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        offset = log.tell()
        log.write(f"==== {header}: {' '.join(command)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=detach,
            )
        except OSError as exc:
            raise StackError(f"cannot run {command[0]}: {exc}") from exc
    return process, offset


def terminate(pid: int, timeout: float) -> None:
    """Stop process ``pid`` (and its process group when it leads one): SIGTERM, then SIGKILL.

    Args:
        pid: The process id.
        timeout: Seconds to wait after SIGTERM before sending SIGKILL.
    """
    process = _process(pid)
    if process is None:
        return
    try:
        group = os.getpgid(pid)
        # The launcher's descendants (Kafka's and Trino's servers) share its group; the stop
        # waits for them too, not only for the launcher, which often exits first.
        members = [pid]
        if group == pid:
            members += [child.pid for child in process.children(recursive=True)]
    except (ProcessLookupError, psutil.NoSuchProcess):
        return

    def send(sig: signal.Signals) -> None:
        # psutil has no process groups; a lone process is signalled through psutil, which
        # refuses a pid that was reused by another process meanwhile.
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            if group == pid:
                os.killpg(group, sig)
            else:
                process.send_signal(sig)

    def gone() -> bool:
        return not any(pid_alive(member) for member in members)

    send(signal.SIGTERM)
    if poll_until(gone, timeout, 0.1):
        return
    send(signal.SIGKILL)
    poll_until(gone, 10.0, 0.1)


def tail(path: Path, lines: int = 30, offset: int = 0) -> str:
    """The last ``lines`` lines of ``path`` from byte ``offset`` on ("" if there is no file).

    Args:
        path: A text file, typically a service's log.
        lines: How many lines to keep.
        offset: Ignore everything before this byte offset.

    Returns:
        The lines, joined by newlines.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            kept = deque(handle, maxlen=lines)
    except OSError:
        return ""
    return b"".join(kept).decode(errors="replace").rstrip("\n")
