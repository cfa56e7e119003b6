"""What every service of the stack has in common: state, status, start, readiness and stop.

A new service (say Trino) is one more subclass of :class:`Service` that says how to run it
(:meth:`Service.command`), how to tell that it answers (:meth:`Service.probe`) and, where
needed, what to check, download or configure first; then it is listed in
:data:`devstack.services.SERVICES`.
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, NoReturn

from devstack import procs
from devstack.errors import StackError
from devstack.paths import StackPaths
from devstack.polling import poll_until
from state.settings import Settings

Reporter = Callable[[str], None]
"""Receives one line of progress for the person running the stack."""


def _silent(_line: str) -> None:
    """A reporter that drops everything."""


class State(StrEnum):
    """The state of one service as the stack sees it."""

    READY = "ready"
    """Started by the stack and answering."""
    EXTERNAL = "external, ready"
    """Not started by the stack, but something answers as this service at its address."""
    STARTING = "running, not ready"
    """Started by the stack, but not answering (yet)."""
    STOPPED = "stopped"
    """Nothing runs at its address."""
    PORT_BUSY = "port busy"
    """Its port is taken by something that does not answer as this service."""


@dataclass(frozen=True)
class ServiceStatus:
    """What :meth:`Service.status` found.

    Attributes:
        name: The service's name, e.g. ``kafka``.
        state: What runs at its address.
        endpoint: Where it is (``host:port`` or a URL).
        pid: The process the stack started, if it runs.
        detail: Why it is not ready, or other notes.
    """

    name: str
    state: State
    endpoint: str
    pid: int | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        """Whether the service answers (started by the stack or not)."""
        return self.state in (State.READY, State.EXTERNAL)


class Service(ABC):
    """One server of the local stack: how to start it, tell it is ready and stop it.

    Subclasses set :attr:`name` and :attr:`title`, and implement :attr:`host`, :attr:`port`,
    :meth:`command` and :meth:`probe`. The base class runs the process detached, with its pid
    in ``.stack/run/<name>.pid`` and its output in ``.stack/logs/<name>.log``.

    Attributes:
        settings: The project's settings; addresses come from them.
        paths: The stack's folders.
        report: Receives progress lines.
    """

    name: ClassVar[str]
    """Short name used on the command line and in file names."""
    title: ClassVar[str]
    """Human name used in messages, e.g. ``Kafka``."""
    ready_timeout_s: ClassVar[float] = 30.0
    """How long a start may take before it counts as failed."""
    stop_timeout_s: ClassVar[float] = 10.0
    """How long to wait after SIGTERM before SIGKILL."""

    def __init__(self, settings: Settings, paths: StackPaths, report: Reporter = _silent) -> None:
        """Bind the service to the settings and folders it uses.

        Args:
            settings: The project's settings.
            paths: The stack's folders.
            report: Receives progress lines.
        """
        self.settings = settings
        self.paths = paths
        self.report = report

    # ---- what a subclass says -------------------------------------------------------------

    @property
    @abstractmethod
    def host(self) -> str:
        """The host the service listens on."""

    @property
    @abstractmethod
    def port(self) -> int:
        """The port clients connect to."""

    @property
    def ports(self) -> list[tuple[int, str]]:
        """Every port the service listens on, each with a label for messages."""
        return [(self.port, self.title)]

    @property
    def endpoint(self) -> str:
        """Where clients find the service, for display."""
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        """Whether the settings point at this machine, where the stack may start the service."""
        return procs.is_local_host(self.host)

    @abstractmethod
    def command(self) -> list[str]:
        """The program and arguments that run the service in the foreground."""

    def environment(self) -> dict[str, str] | None:
        """The process environment, or None to inherit the caller's."""
        return None

    @abstractmethod
    def probe(self, timeout: float) -> None:
        """Make one real request to the service.

        Args:
            timeout: Seconds the request may take.

        Raises:
            Exception: Any error means "not answering as this service".
        """

    def check_prerequisites(self) -> None:  # noqa: B027 (an optional hook)
        """Fail fast, before anything starts, when a program the service needs is missing.

        Raises:
            StackError: Naming the missing prerequisite and how to install it.
        """

    def prepare(self) -> None:  # noqa: B027 (an optional hook)
        """Download, configure or initialise what the service needs before its first start.

        Raises:
            StackError: When that fails.
        """

    def after_ready(self, started: bool) -> None:  # noqa: B027 (an optional hook)
        """Run once the service answers, e.g. to create a bucket.

        Args:
            started: True when this run of ``up`` started the process.

        Raises:
            StackError: When that fails.
        """

    # ---- shared behaviour -----------------------------------------------------------------

    @property
    def pid_file(self) -> Path:
        """The service's pid file."""
        return self.paths.pid(self.name)

    @property
    def log_file(self) -> Path:
        """The service's log file."""
        return self.paths.log(self.name)

    @property
    def data_dir(self) -> Path:
        """The service's data folder."""
        return self.paths.data(self.name)

    @property
    def workdir(self) -> Path:
        """The working directory of the service's process (its data folder by default)."""
        return self.data_dir

    def pid(self) -> int | None:
        """The pid of the process the stack started, if it still runs."""
        return procs.read_pid(self.pid_file)

    def answer(self, timeout: float = 2.0) -> str | None:
        """Whether the service answers a real request.

        Args:
            timeout: Seconds the request may take.

        Returns:
            None when it answers, otherwise why not.
        """
        if self.local and not procs.port_open(self.host, self.port, min(timeout, 1.0)):
            return f"nothing accepts connections on {self.host}:{self.port}"
        try:
            self.probe(timeout)
        except Exception as exc:
            text = str(exc).strip() or type(exc).__name__
            return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
        return None

    def status(self, timeout: float = 2.0) -> ServiceStatus:
        """Check what runs at the service's address, without starting or waiting for anything.

        Args:
            timeout: Seconds each request may take.

        Returns:
            The service's state.
        """
        pid = self.pid()
        if pid is not None:
            problem = self.answer(timeout)
            if problem is None:
                return ServiceStatus(self.name, State.READY, self.endpoint, pid)
            return ServiceStatus(self.name, State.STARTING, self.endpoint, pid, problem)
        if not self.local:
            problem = self.answer(timeout)
            if problem is None:
                return ServiceStatus(self.name, State.EXTERNAL, self.endpoint)
            return ServiceStatus(
                self.name,
                State.STOPPED,
                self.endpoint,
                detail=f"not on this machine, so the stack does not start it: {problem}",
            )
        taken = [(port, label) for port, label in self.ports if procs.port_open(self.host, port)]
        if not taken:
            return ServiceStatus(self.name, State.STOPPED, self.endpoint)
        names = ", ".join(f"{port} ({label})" for port, label in taken)
        if taken[0][0] != self.port:
            why = "another program"
        else:
            problem = self.answer(timeout)
            if problem is None:
                return ServiceStatus(self.name, State.EXTERNAL, self.endpoint)
            why = f"another program that does not answer as {self.title} ({problem})"
        return ServiceStatus(
            self.name,
            State.PORT_BUSY,
            self.endpoint,
            detail=(
                f"port {names} on {self.host} is in use by {why}; "
                "stop it or change the address in the settings"
            ),
        )

    def start(self) -> tuple[subprocess.Popen[bytes], int]:
        """Run the service detached and record its pid.

        Returns:
            The process and the offset in the log where this run's output starts.

        Raises:
            StackError: When the program cannot be executed.
        """
        process, offset = procs.spawn(
            self.command(), self.log_file, self.workdir, self.environment()
        )
        procs.write_pid(self.pid_file, process.pid)
        return process, offset

    def wait_ready(self, process: subprocess.Popen[bytes] | None, log_offset: int) -> float:
        """Poll the service with real requests until it answers.

        Args:
            process: The process this run started, or None to follow the pid file.
            log_offset: Where this run's output starts in the log (for error messages).

        Returns:
            Seconds it took.

        Raises:
            StackError: When the process dies or :attr:`ready_timeout_s` passes; the message
                holds the end of the log. A process that never became ready is stopped.
        """
        began = time.monotonic()
        problems: list[str] = []

        def answered() -> bool:
            exit_code = process.poll() if process is not None else None
            if exit_code is not None:
                self.pid_file.unlink(missing_ok=True)
                self._fail(f"{self.title} exited with code {exit_code} while starting", log_offset)
            if process is None and self.pid() is None:
                self._fail(f"{self.title} exited while starting", log_offset)
            left = self.ready_timeout_s - (time.monotonic() - began)
            problem = self.answer(min(2.0, max(0.5, left)))
            if problem is None:
                return True
            problems.append(problem)
            return False

        if poll_until(answered, self.ready_timeout_s, 0.25):
            return time.monotonic() - began
        self.stop()
        self._fail(
            f"{self.title} did not answer within {self.ready_timeout_s:.0f} s "
            f"(last: {problems[-1]}); it was stopped",
            log_offset,
        )

    def _fail(self, message: str, log_offset: int) -> NoReturn:
        """Raise a StackError with ``message`` and the last 30 lines of this run's log."""
        log = procs.tail(self.log_file, 30, log_offset)
        raise StackError(f"{message}.\nLast lines of {self.log_file}:\n{log or '(empty)'}")

    def stop(self) -> bool:
        """Stop the process the stack started (SIGTERM, then SIGKILL), if it runs.

        Returns:
            True when a process was stopped.
        """
        pid = self.pid()
        if pid is None:
            return False
        procs.terminate(pid, self.stop_timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True
